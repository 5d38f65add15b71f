//! The recurrent cells and sequence runners against PyTorch 2.15 (`tools/reference_recurrent.py`
//! writes `tests/fixtures/recurrent.txt`): for each of the seven cells, the outputs, the last
//! state and the gradients of `Σ out ⊙ g_out + Σ h_T ⊙ g_h (+ Σ C_T ⊙ g_c)` with respect to the
//! input, the initial state and every parameter; a finite-difference check on the input; a
//! run-time sequence length; a 2-layer stacked LSTM and a bidirectional GRU.

use std::collections::HashMap;

use dfdx::prelude::*;
use typednet::assert_close;
use typednet::gradcheck::check_gradient;
use typednet::recurrent::{
    try_run_bidirectional, try_run_last, try_run_sequence, try_run_stacked, ElmanCell, GruCell,
    LstmCell, LstmNoForgetCell, LstmState, MguCell, PeepholeLstmCell, RecurrentCell, TorchGruCell,
};
use typednet::testing::TestDevice;

type Dev = TestDevice;
type Tape = OwnedTape<f64, Dev>;
/// A batch of hidden states, `[B, H]` = `[2, 5]`.
type Hidden<T = NoneTape> = Tensor<Rank2<2, 5>, f64, Dev, T>;

const VALUES: f64 = 1e-12;
const GRADIENTS: f64 = 1e-10;

fn fixture() -> HashMap<String, Vec<f64>> {
    typednet::testing::named_arrays(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/recurrent.txt"
    ))
}

fn get(f: &HashMap<String, Vec<f64>>, name: &str) -> Vec<f64> {
    f.get(name)
        .unwrap_or_else(|| panic!("fixture has no {name}"))
        .clone()
}

/// A tensor of a constant shape from the fixture.
fn load<S: ConstShape>(
    dev: &Dev,
    f: &HashMap<String, Vec<f64>>,
    name: &str,
) -> Tensor<S, f64, Dev> {
    dev.tensor_from_vec(get(f, name), S::default())
}

/// What the tests need of a cell beyond [`RecurrentCell`]: loading it and its state from the
/// fixture, and its parameters' gradients.
trait Case: RecurrentCell<3, 5, f64, Dev> + Sized {
    fn load(dev: &Dev, f: &HashMap<String, Vec<f64>>, prefix: &str) -> Self;
    fn parameter_gradients(&self, grads: &Gradients<f64, Dev>) -> Vec<(&'static str, Vec<f64>)>;
    /// The state `h` (and `C` for the LSTMs).
    fn state(h: Hidden, c: Hidden) -> Self::State<Const<2>, NoneTape>;
    /// `C` of an LSTM state.
    fn cell_state<T: dfdx::tensor::Tape<f64, Dev>>(
        state: &Self::State<Const<2>, T>,
    ) -> Option<&Hidden<T>>;
}

macro_rules! case {
    ($cell:ident, lstm: $lstm:tt, [$($param:ident),*]) => {
        impl Case for $cell<3, 5, f64, Dev> {
            fn load(dev: &Dev, f: &HashMap<String, Vec<f64>>, prefix: &str) -> Self {
                $cell { $($param: load(dev, f, &format!("{prefix}.{}", stringify!($param))),)* }
            }
            fn parameter_gradients(
                &self,
                grads: &Gradients<f64, Dev>,
            ) -> Vec<(&'static str, Vec<f64>)> {
                vec![$((stringify!($param), grads.get(&self.$param).as_vec()),)*]
            }
            case!(@state $lstm);
        }
    };
    (@state true) => {
        fn state(h: Hidden, c: Hidden) -> Self::State<Const<2>, NoneTape> {
            LstmState { h, c }
        }
        fn cell_state<T: dfdx::tensor::Tape<f64, Dev>>(
            state: &Self::State<Const<2>, T>,
        ) -> Option<&Hidden<T>> {
            Some(&state.c)
        }
    };
    (@state false) => {
        fn state(h: Hidden, _: Hidden) -> Self::State<Const<2>, NoneTape> {
            h
        }
        fn cell_state<T: dfdx::tensor::Tape<f64, Dev>>(
            _: &Self::State<Const<2>, T>,
        ) -> Option<&Hidden<T>> {
            None
        }
    };
}

case!(ElmanCell, lstm: false, [weight_ih, weight_hh, bias_ih, bias_hh]);
case!(LstmNoForgetCell, lstm: true, [weight_ih, weight_hh, bias_ih, bias_hh]);
case!(LstmCell, lstm: true, [weight_ih, weight_hh, bias_ih, bias_hh]);
case!(PeepholeLstmCell, lstm: true, [weight_ih, weight_hh, bias_ih, bias_hh, weight_peephole]);
case!(GruCell, lstm: false, [weight_ih, weight_hh, bias_ih, bias_hh]);
case!(TorchGruCell, lstm: false, [weight_ih, weight_hh, bias_ih, bias_hh]);
case!(MguCell, lstm: false, [weight_ih, weight_hh, bias_ih, bias_hh]);

/// The upstream gradients of a case.
struct Upstream {
    out: Tensor<Rank3<2, 4, 5>, f64, Dev>,
    h: Hidden,
    c: Option<Hidden>,
}

/// What one run gives: the loss (on the tape) and the values of the outputs and last state.
struct Run {
    loss: Tensor<Rank0, f64, Dev, Tape>,
    out: Vec<f64>,
    h: Vec<f64>,
    c: Option<Vec<f64>>,
}

/// Runs `cell` over `x` (sequence length `S`, `Const<4>` or `usize`) and forms the loss.
fn run<C: Case, S: Dim>(
    cell: &C,
    x: Tensor<(Const<2>, S, Const<3>), f64, Dev, Tape>,
    initial: Option<C::State<Const<2>, NoneTape>>,
    g: &Upstream,
) -> Run {
    let seq = x.shape().1;
    let initial = initial.map(|s| C::put_state_tape(s, Tape::default()));
    let (out, last) = try_run_sequence(cell, x, initial).unwrap();
    let (last, last_tape) = C::split_state_tape(last);
    let (out, out_tape) = out.split_tape();
    let out_values = out.as_vec();
    let g_out = g.out.clone().reshape_like(&(Const::<2>, seq, Const::<5>));
    let h = C::hidden(&last);
    let mut loss = (out.put_tape(out_tape.merge(last_tape)) * g_out).sum()
        + (h.retaped::<Tape>() * g.h.clone()).sum();
    let c = C::cell_state(&last);
    if let Some(c) = c {
        loss = loss + (c.retaped::<Tape>() * g.c.clone().unwrap()).sum();
    }
    Run {
        loss,
        out: out_values,
        h: h.as_vec(),
        c: c.map(|c| c.as_vec()),
    }
}

/// Everything about one cell against the fixture.
fn check<C: Case>(name: &str) {
    let f = fixture();
    let dev = typednet::test_device!();
    let cell = C::load(&dev, &f, name);
    let x: Tensor<Rank3<2, 4, 3>, f64, Dev> = load(&dev, &f, &format!("{name}.x"));
    let h0: Hidden = load(&dev, &f, &format!("{name}.h0"));
    let has_c = f.contains_key(&format!("{name}.c0"));
    let c0: Hidden = if has_c {
        load(&dev, &f, &format!("{name}.c0"))
    } else {
        dev.zeros()
    };
    let g = Upstream {
        out: load(&dev, &f, &format!("{name}.g_out")),
        h: load(&dev, &f, &format!("{name}.g_h")),
        c: has_c.then(|| load(&dev, &f, &format!("{name}.g_c"))),
    };
    let initial = || Some(C::state(h0.clone(), c0.clone()));

    // Values and every gradient against PyTorch.
    let result = run(&cell, x.leaky_trace(), initial(), &g);
    assert_close!(result.out, get(&f, &format!("{name}.out")), VALUES);
    assert_close!(result.h, get(&f, &format!("{name}.h_last")), VALUES);
    assert_eq!(result.c.is_some(), has_c, "{name}: cell state");
    if let Some(c) = &result.c {
        assert_close!(c, get(&f, &format!("{name}.c_last")), VALUES);
    }
    let grads = result.loss.backward();
    assert_close!(
        grads.get(&x).as_vec(),
        get(&f, &format!("{name}.grad_x")),
        GRADIENTS
    );
    assert_close!(
        grads.get(&h0).as_vec(),
        get(&f, &format!("{name}.grad_h0")),
        GRADIENTS
    );
    if has_c {
        assert_close!(
            grads.get(&c0).as_vec(),
            get(&f, &format!("{name}.grad_c0")),
            GRADIENTS
        );
    }
    let parameters = cell.parameter_gradients(&grads);
    assert!(parameters.len() >= 4);
    for (parameter, gradient) in parameters {
        assert_close!(
            gradient,
            get(&f, &format!("{name}.grad_{parameter}")),
            GRADIENTS
        );
    }

    // Finite differences on the input.
    check_gradient(&x, |x| run(&cell, x, initial(), &g).loss).assert_below(1e-6);

    // A run-time sequence length gives the same values and gradients as Const<4>.
    let x_dyn: Tensor<(Const<2>, usize, Const<3>), f64, Dev> = x.clone().realize();
    let dynamic = run(&cell, x_dyn.leaky_trace(), initial(), &g);
    assert_close!(dynamic.out, result.out, VALUES);
    assert_close!(dynamic.h, result.h, VALUES);
    let dynamic_grads = dynamic.loss.backward();
    assert_close!(
        dynamic_grads.get(&x_dyn).as_vec(),
        grads.get(&x).as_vec(),
        VALUES
    );

    // No initial state is the zero state.
    let zeros = run(
        &cell,
        x.leaky_trace(),
        Some(C::state(dev.zeros(), dev.zeros())),
        &g,
    );
    let none = run(&cell, x.leaky_trace(), None, &g);
    assert_close!(none.out, zeros.out, VALUES);
    assert_close!(none.h, zeros.h, VALUES);
    assert_close!(
        none.loss.backward().get(&x).as_vec(),
        zeros.loss.backward().get(&x).as_vec(),
        VALUES
    );

    // try_run_last carries the tape on the state: a loss on the last state alone gets the same
    // gradients as the same loss through try_run_sequence.
    let last = try_run_last(
        &cell,
        x.leaky_trace(),
        initial().map(|s| C::put_state_tape(s, Tape::default())),
    )
    .unwrap();
    let (last, tape) = C::split_state_tape(last);
    let mut loss_last = (C::hidden(&last).clone().put_tape(tape) * g.h.clone()).sum();
    if let Some(c) = C::cell_state(&last) {
        loss_last = loss_last + (c.retaped::<Tape>() * g.c.clone().unwrap()).sum();
    }
    assert_close!(C::hidden(&last).as_vec(), result.h, VALUES);
    let without_outputs = Upstream {
        out: dev.zeros(),
        h: g.h.clone(),
        c: g.c.clone(),
    };
    let expected = run(&cell, x.leaky_trace(), initial(), &without_outputs)
        .loss
        .backward();
    let got = loss_last.backward();
    assert_close!(got.get(&x).as_vec(), expected.get(&x).as_vec(), VALUES);
    assert_close!(got.get(&h0).as_vec(), expected.get(&h0).as_vec(), VALUES);
}

#[test]
fn elman_matches_nn_rnn() {
    check::<ElmanCell<3, 5, f64, Dev>>("elman");
}

#[test]
fn lstm_without_forget_gate_matches_reference() {
    check::<LstmNoForgetCell<3, 5, f64, Dev>>("lstm_no_forget");
}

#[test]
fn lstm_matches_nn_lstm() {
    check::<LstmCell<3, 5, f64, Dev>>("lstm");
}

#[test]
fn peephole_lstm_matches_reference() {
    check::<PeepholeLstmCell<3, 5, f64, Dev>>("peephole_lstm");
}

#[test]
fn gru_of_the_notes_matches_reference() {
    check::<GruCell<3, 5, f64, Dev>>("gru_notes");
}

#[test]
fn torch_gru_matches_nn_gru() {
    check::<TorchGruCell<3, 5, f64, Dev>>("gru_torch");
}

#[test]
fn minimal_gated_unit_matches_reference() {
    check::<MguCell<3, 5, f64, Dev>>("mgu");
}

/// Splits a `[2, B, H]` fixture array into its two `[B, H]` halves.
fn halves(dev: &Dev, values: Vec<f64>) -> (Hidden, Hidden) {
    let (a, b) = values.split_at(values.len() / 2);
    (
        dev.tensor_from_vec(a.to_vec(), Default::default()),
        dev.tensor_from_vec(b.to_vec(), Default::default()),
    )
}

fn concat_values(a: Vec<f64>, b: Vec<f64>) -> Vec<f64> {
    a.into_iter().chain(b).collect()
}

#[test]
fn stacked_lstm_matches_two_layer_nn_lstm() {
    let f = fixture();
    let dev = typednet::test_device!();
    let p = |name: &str| format!("stacked_lstm.{name}");
    let first = LstmCell::<3, 5, f64, Dev> {
        weight_ih: load(&dev, &f, &p("weight_ih_l0")),
        weight_hh: load(&dev, &f, &p("weight_hh_l0")),
        bias_ih: load(&dev, &f, &p("bias_ih_l0")),
        bias_hh: load(&dev, &f, &p("bias_hh_l0")),
    };
    let second = LstmCell::<5, 5, f64, Dev> {
        weight_ih: load(&dev, &f, &p("weight_ih_l1")),
        weight_hh: load(&dev, &f, &p("weight_hh_l1")),
        bias_ih: load(&dev, &f, &p("bias_ih_l1")),
        bias_hh: load(&dev, &f, &p("bias_hh_l1")),
    };
    let x: Tensor<Rank3<2, 4, 3>, f64, Dev> = load(&dev, &f, &p("x"));
    let (h0, h1) = halves(&dev, get(&f, &p("h0")));
    let (c0, c1) = halves(&dev, get(&f, &p("c0")));
    let g_out: Tensor<Rank3<2, 4, 5>, f64, Dev> = load(&dev, &f, &p("g_out"));
    let (gh0, gh1) = halves(&dev, get(&f, &p("g_h")));
    let (gc0, gc1) = halves(&dev, get(&f, &p("g_c")));
    let state = |h: &Hidden, c: &Hidden| LstmState {
        h: h.retaped::<Tape>(),
        c: c.retaped::<Tape>(),
    };
    let (out, last) = try_run_stacked(
        &first,
        std::slice::from_ref(&second),
        x.leaky_trace(),
        Some(vec![state(&h0, &c0), state(&h1, &c1)]),
    )
    .unwrap();
    assert_eq!(last.len(), 2);
    assert_close!(out.as_vec(), get(&f, &p("out")), VALUES);
    assert_close!(
        concat_values(last[0].h.as_vec(), last[1].h.as_vec()),
        get(&f, &p("h_last")),
        VALUES
    );
    assert_close!(
        concat_values(last[0].c.as_vec(), last[1].c.as_vec()),
        get(&f, &p("c_last")),
        VALUES
    );
    let mut loss = (out * g_out).sum();
    for (state, (gh, gc)) in last.into_iter().zip([(gh0, gc0), (gh1, gc1)]) {
        loss = loss + (state.h * gh).sum() + (state.c * gc).sum();
    }
    let grads = loss.backward();
    assert_close!(grads.get(&x).as_vec(), get(&f, &p("grad_x")), GRADIENTS);
    assert_close!(
        concat_values(grads.get(&h0).as_vec(), grads.get(&h1).as_vec()),
        get(&f, &p("grad_h0")),
        GRADIENTS
    );
    assert_close!(
        concat_values(grads.get(&c0).as_vec(), grads.get(&c1).as_vec()),
        get(&f, &p("grad_c0")),
        GRADIENTS
    );
    for (layer, cell_grads) in [
        (0, first.parameter_gradients(&grads)),
        (
            1,
            vec![
                ("weight_ih", grads.get(&second.weight_ih).as_vec()),
                ("weight_hh", grads.get(&second.weight_hh).as_vec()),
                ("bias_ih", grads.get(&second.bias_ih).as_vec()),
                ("bias_hh", grads.get(&second.bias_hh).as_vec()),
            ],
        ),
    ] {
        for (name, gradient) in cell_grads {
            assert_close!(
                gradient,
                get(&f, &p(&format!("grad_{name}_l{layer}"))),
                GRADIENTS
            );
        }
    }
}

fn load_gru(
    dev: &Dev,
    f: &HashMap<String, Vec<f64>>,
    suffix: &str,
) -> TorchGruCell<3, 5, f64, Dev> {
    let p = |name: &str| format!("bi_gru.{name}_l0{suffix}");
    TorchGruCell {
        weight_ih: load(dev, f, &p("weight_ih")),
        weight_hh: load(dev, f, &p("weight_hh")),
        bias_ih: load(dev, f, &p("bias_ih")),
        bias_hh: load(dev, f, &p("bias_hh")),
    }
}

#[test]
fn bidirectional_gru_matches_bidirectional_nn_gru() {
    let f = fixture();
    let dev = typednet::test_device!();
    let p = |name: &str| format!("bi_gru.{name}");
    let forward = load_gru(&dev, &f, "");
    let backward = load_gru(&dev, &f, "_reverse");
    let x: Tensor<Rank3<2, 4, 3>, f64, Dev> = load(&dev, &f, &p("x"));
    let (h0f, h0b) = halves(&dev, get(&f, &p("h0")));
    let g_out: Tensor<Rank3<2, 4, 10>, f64, Dev> = load(&dev, &f, &p("g_out"));
    let (ghf, ghb) = halves(&dev, get(&f, &p("g_h")));
    let initial = Some((h0f.retaped::<Tape>(), h0b.retaped::<Tape>()));
    let (out, (last_f, last_b)) = try_run_bidirectional::<_, 3, 5, 10, _, _, _, _, _>(
        &forward,
        &backward,
        x.leaky_trace(),
        initial,
    )
    .unwrap();
    let _: &Tensor<Rank3<2, 4, 10>, f64, Dev, Tape> = &out;
    assert_close!(out.as_vec(), get(&f, &p("out")), VALUES);
    assert_close!(
        concat_values(last_f.as_vec(), last_b.as_vec()),
        get(&f, &p("h_last")),
        VALUES
    );
    let grads = ((out * g_out).sum() + (last_f * ghf).sum() + (last_b * ghb).sum()).backward();
    assert_close!(grads.get(&x).as_vec(), get(&f, &p("grad_x")), GRADIENTS);
    assert_close!(
        concat_values(grads.get(&h0f).as_vec(), grads.get(&h0b).as_vec()),
        get(&f, &p("grad_h0")),
        GRADIENTS
    );
    for (cell, suffix) in [(&forward, ""), (&backward, "_reverse")] {
        for (name, gradient) in cell.parameter_gradients(&grads) {
            assert_close!(
                gradient,
                get(&f, &p(&format!("grad_{name}_l0{suffix}"))),
                GRADIENTS
            );
        }
    }
}

#[test]
#[should_panic(expected = "must be twice the hidden size")]
fn bidirectional_rejects_a_wrong_output_size() {
    let dev = typednet::test_device!();
    let cell = TorchGruCell::<3, 5, f64, Dev>::build(&dev);
    let x: Tensor<Rank3<2, 4, 3>, f64, Dev> = dev.zeros();
    let _ = try_run_bidirectional::<_, 3, 5, 9, _, _, _, _, _>(&cell, &cell, x, None);
}

#[test]
fn outputs_alone_carry_every_gradient() {
    // A loss on the outputs only (the last state dropped) still reaches the input and weights.
    let dev = typednet::test_device!();
    let cell = LstmCell::<3, 5, f64, Dev>::build(&dev);
    let x: Tensor<(Const<2>, usize, Const<3>), f64, Dev> =
        dev.sample_normal_like(&(Const, 6, Const));
    let (out, _) = try_run_sequence(&cell, x.leaky_trace(), None).unwrap();
    let _: &Tensor<(Const<2>, usize, Const<5>), f64, Dev, Tape> = &out;
    let grads = out.square().sum().backward();
    assert!(grads.get(&x).as_vec().iter().all(|g| *g != 0.0));
    assert!(grads
        .get(&cell.weight_hh)
        .as_vec()
        .iter()
        .any(|g| *g != 0.0));
}
