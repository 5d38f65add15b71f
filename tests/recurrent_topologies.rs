//! The two recurrent topologies beyond the chain: the 2-D grid network ([`GridRnnCell`]) and
//! the graph network ([`GraphRnnCell`]). Values against plain-Rust loops of their formulas and
//! a hand-computed 2×2 grid, which inputs each state depends on (by its gradient), and
//! finite-difference checks of the gradients.

use dfdx::prelude::*;
use typednet::assert_close;
use typednet::gradcheck::{check_gradient, check_parameter_gradient};
use typednet::recurrent::{
    try_run_graph, try_run_grid, try_run_grid_last, try_run_last, ElmanCell, GraphRnnCell,
    GridRnnCell,
};
use typednet::testing::TestDevice;

type Dev = TestDevice;
type Tape = OwnedTape<f64, Dev>;

const VALUES: f64 = 1e-12;

/// `Σ_k m[r, k]·v[k]` for a row-major `[rows, n]` matrix `m`.
fn mat_vec(m: &[f64], v: &[f64]) -> Vec<f64> {
    m.chunks(v.len())
        .map(|row| row.iter().zip(v).map(|(a, b)| a * b).sum())
        .collect()
}

fn add(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(a, b)| a + b).collect()
}

// ---------------------------------------------------------------------------------------------
// Grid

/// The grid formula as loops: `x` `[B, C, R, W]` → every `h_ij` as `[B, H, R, W]`.
fn grid_reference<const C: usize, const H: usize>(
    cell: &GridRnnCell<C, H, f64, Dev>,
    x: &[f64],
    (b, r, w): (usize, usize, usize),
) -> Vec<f64> {
    let (wi, wu, wl, bias) = (
        cell.weight_ih.as_vec(),
        cell.weight_up.as_vec(),
        cell.weight_left.as_vec(),
        cell.bias.as_vec(),
    );
    let mut out = vec![0.0; b * H * r * w];
    for n in 0..b {
        let mut h = vec![vec![vec![0.0; H]; w]; r];
        for i in 0..r {
            for j in 0..w {
                let pixel: Vec<f64> = (0..C).map(|c| x[((n * C + c) * r + i) * w + j]).collect();
                let mut z = add(&mat_vec(&wi, &pixel), &bias);
                if i > 0 {
                    z = add(&z, &mat_vec(&wu, &h[i - 1][j]));
                }
                if j > 0 {
                    z = add(&z, &mat_vec(&wl, &h[i][j - 1]));
                }
                h[i][j] = z.iter().map(|v| v.tanh()).collect();
                for k in 0..H {
                    out[((n * H + k) * r + i) * w + j] = h[i][j][k];
                }
            }
        }
    }
    out
}

#[test]
fn grid_matches_its_formula() {
    let dev = typednet::test_device!();
    let cell = GridRnnCell::<2, 3, f64, Dev>::build(&dev);
    let x: Tensor<Rank4<2, 2, 3, 4>, f64, Dev> = dev.sample_normal();
    let (out, last) = try_run_grid(&cell, x.clone()).unwrap();
    let _: &Tensor<Rank4<2, 3, 3, 4>, f64, Dev> = &out;
    let _: &Tensor<Rank2<2, 3>, f64, Dev> = &last;
    let expected = grid_reference(&cell, &x.as_vec(), (2, 3, 4));
    assert_close!(out.as_vec(), expected, VALUES);
    // The bottom-right state is out[:, :, 2, 3].
    let corner: Vec<f64> = (0..2 * 3).map(|nk| expected[nk * 12 + 11]).collect();
    assert_close!(last.as_vec(), corner, VALUES);
    assert_close!(
        try_run_grid_last(&cell, x.clone()).unwrap().as_vec(),
        corner,
        VALUES
    );

    // Run-time height and width give the same map.
    let x_dyn: Tensor<(Const<2>, Const<2>, usize, usize), f64, Dev> = x.realize();
    let (out_dyn, _) = try_run_grid(&cell, x_dyn).unwrap();
    assert_eq!(out_dyn.shape().concrete(), [2, 3, 3, 4]);
    assert_close!(out_dyn.as_vec(), expected, VALUES);
}

#[test]
fn grid_two_by_two_by_hand() {
    let dev = typednet::test_device!();
    // H = C = 1: W = 1, U_up = 2, U_left = −1, b = 0.5.
    let cell = GridRnnCell::<1, 1, f64, Dev> {
        weight_ih: dev.tensor([[1.0]]),
        weight_up: dev.tensor([[2.0]]),
        weight_left: dev.tensor([[-1.0]]),
        bias: dev.tensor([0.5]),
    };
    // x = [[0.5, −1], [0.25, 1]]
    let x: Tensor<Rank4<1, 1, 2, 2>, f64, Dev> = dev.tensor([[[[0.5, -1.0], [0.25, 1.0]]]]);
    let h00 = (0.5f64 + 0.5).tanh();
    let h01 = (-1.0 + 0.5 - h00).tanh();
    let h10 = (0.25 + 0.5 + 2.0 * h00).tanh();
    let h11 = (1.0 + 0.5 + 2.0 * h01 - h10).tanh();
    // tanh(1) = 0.7616, tanh(−1.2616) = −0.8515, tanh(2.2732) = 0.9790,
    // tanh(1.5 − 1.7030 − 0.9790) = tanh(−1.1820) = −0.8281.
    assert_close!(
        [h00, h01, h10, h11],
        [0.7616, -0.8515, 0.9790, -0.8281],
        1e-4
    );
    let (out, last) = try_run_grid(&cell, x).unwrap();
    assert_close!(out.as_vec(), [h00, h01, h10, h11], VALUES);
    assert_close!(last.as_vec(), [h11], VALUES);
}

#[test]
fn grid_states_depend_on_the_pixels_above_and_to_the_left() {
    let dev = typednet::test_device!();
    let cell = GridRnnCell::<2, 3, f64, Dev>::build(&dev);
    let x: Tensor<Rank4<2, 2, 2, 2>, f64, Dev> = dev.sample_normal();

    // Changing x_11 leaves h_00 (and h_01, h_10) unchanged, but not h_11.
    let mut changed = x.as_vec();
    for n in 0..2 {
        for c in 0..2 {
            changed[(n * 2 + c) * 4 + 3] += 1.0;
        }
    }
    let changed: Tensor<Rank4<2, 2, 2, 2>, f64, Dev> = dev.tensor_from_vec(changed, *x.shape());
    let (a, _) = try_run_grid(&cell, x.clone()).unwrap();
    let (b, _) = try_run_grid(&cell, changed).unwrap();
    let (a, b) = (a.as_vec(), b.as_vec());
    for nk in 0..2 * 3 {
        for pixel in 0..3 {
            assert_eq!(a[nk * 4 + pixel], b[nk * 4 + pixel], "h at pixel {pixel}");
        }
        assert!((a[nk * 4 + 3] - b[nk * 4 + 3]).abs() > 1e-6, "h_11");
    }

    // ∂(Σ h_11)/∂x is nonzero at every pixel and channel; ∂(Σ h_00)/∂x only at x_00.
    let grads = try_run_grid_last(&cell, x.leaky_trace())
        .unwrap()
        .sum()
        .backward();
    let g = grads.get(&x).as_vec();
    assert!(g.iter().all(|g| g.abs() > 1e-8), "{g:?}");
    let mut mask = [[[[0.0; 2]; 2]; 3]; 2];
    for m in mask.iter_mut().flat_map(|m| m.iter_mut()) {
        m[0][0] = 1.0;
    }
    let mask: Tensor<Rank4<2, 3, 2, 2>, f64, Dev> = dev.tensor(mask);
    let (out, _) = try_run_grid(&cell, x.leaky_trace()).unwrap();
    let g = (out * mask).sum().backward().get(&x).as_vec();
    for (index, g) in g.iter().enumerate() {
        assert_eq!(
            *g != 0.0,
            index % 4 == 0,
            "pixel {} gradient {g}",
            index % 4
        );
    }
}

#[test]
fn grid_gradients_match_finite_differences() {
    let dev = typednet::test_device!();
    let cell = GridRnnCell::<2, 3, f64, Dev>::build(&dev);
    let x: Tensor<Rank4<2, 2, 3, 4>, f64, Dev> = dev.sample_normal();
    let g_out: Tensor<Rank4<2, 3, 3, 4>, f64, Dev> = dev.sample_normal();
    let g_last: Tensor<Rank2<2, 3>, f64, Dev> = dev.sample_normal();
    let loss = |cell: &GridRnnCell<2, 3, f64, Dev>,
                x: Tensor<Rank4<2, 2, 3, 4>, f64, Dev, Tape>| {
        let (out, last) = try_run_grid(cell, x).unwrap();
        (out * g_out.clone()).sum() + (last * g_last.clone()).sum()
    };
    check_gradient(&x, |x| loss(&cell, x)).assert_below(1e-6);
    check_parameter_gradient(
        &cell,
        |c| &mut c.weight_up,
        |c, gradients| loss(c, x.trace(gradients)),
    )
    .assert_below(1e-6);
    check_parameter_gradient(
        &cell,
        |c| &mut c.weight_left,
        |c, gradients| loss(c, x.trace(gradients)),
    )
    .assert_below(1e-6);
    check_parameter_gradient(
        &cell,
        |c| &mut c.weight_ih,
        |c, gradients| loss(c, x.trace(gradients)),
    )
    .assert_below(1e-6);
    check_parameter_gradient(
        &cell,
        |c| &mut c.bias,
        |c, gradients| loss(c, x.trace(gradients)),
    )
    .assert_below(1e-6);
    // The bottom-right state alone carries the tape in try_run_grid_last.
    check_gradient(&x, |x| {
        (try_run_grid_last(&cell, x).unwrap() * g_last.clone()).sum()
    })
    .assert_below(1e-6);
}

#[test]
fn grid_and_graph_cells_count_and_initialise_like_pytorch() {
    let dev = typednet::test_device!();
    let grid = GridRnnCell::<3, 16, f64, Dev>::build(&dev);
    assert_eq!(grid.num_trainable_params(), 16 * 3 + 2 * 16 * 16 + 16);
    let graph = GraphRnnCell::<3, 16, f64, Dev>::build(&dev);
    assert_eq!(graph.num_trainable_params(), 16 * 3 + 16 * 16 + 16);
    for values in [
        grid.weight_ih.as_vec(),
        grid.weight_up.as_vec(),
        grid.weight_left.as_vec(),
        grid.bias.as_vec(),
        graph.weight_ih.as_vec(),
        graph.weight_hh.as_vec(),
        graph.bias.as_vec(),
    ] {
        assert!(values.iter().all(|w| w.abs() <= 0.25));
        assert!(values.iter().any(|w| (w - values[0]).abs() > 1e-6));
    }
}

// ---------------------------------------------------------------------------------------------
// Graph

/// The graph formula as loops: `x` `[B, N, F]`, `a` `[N, N]`, `h0` `[B, N, H]` → `H^K`.
fn graph_reference<const F: usize, const H: usize>(
    cell: &GraphRnnCell<F, H, f64, Dev>,
    x: &[f64],
    a: &[f64],
    h0: Vec<f64>,
    steps: usize,
) -> Vec<f64> {
    let (wi, wh, bias) = (
        cell.weight_ih.as_vec(),
        cell.weight_hh.as_vec(),
        cell.bias.as_vec(),
    );
    let n = (a.len() as f64).sqrt() as usize;
    let b = x.len() / (n * F);
    let mut h = h0;
    for _ in 0..steps {
        let mut next = vec![0.0; b * n * H];
        for batch in 0..b {
            for v in 0..n {
                let mut sum = vec![0.0; H];
                for u in 0..n {
                    let hu = &h[(batch * n + u) * H..][..H];
                    sum = add(
                        &sum,
                        &hu.iter().map(|h| a[v * n + u] * h).collect::<Vec<_>>(),
                    );
                }
                let xv = &x[(batch * n + v) * F..][..F];
                let z = add(&add(&mat_vec(&wi, xv), &mat_vec(&wh, &sum)), &bias);
                for k in 0..H {
                    next[(batch * n + v) * H + k] = z[k].tanh();
                }
            }
        }
        h = next;
    }
    h
}

#[test]
fn graph_matches_its_formula() {
    let dev = typednet::test_device!();
    let cell = GraphRnnCell::<3, 5, f64, Dev>::build(&dev);
    let x: Tensor<Rank3<2, 4, 3>, f64, Dev> = dev.sample_normal();
    let a: Tensor<Rank2<4, 4>, f64, Dev> = dev.sample_uniform();
    let h0: Tensor<Rank3<2, 4, 5>, f64, Dev> = dev.sample_normal();
    for steps in 0..4 {
        let out = try_run_graph(&cell, x.clone(), &a, steps, None).unwrap();
        let _: &Tensor<Rank3<2, 4, 5>, f64, Dev> = &out;
        let zeros = vec![0.0; 2 * 4 * 5];
        let expected = graph_reference(&cell, &x.as_vec(), &a.as_vec(), zeros, steps);
        assert_close!(out.as_vec(), expected, VALUES);
        let out = try_run_graph(&cell, x.clone(), &a, steps, Some(h0.clone())).unwrap();
        let expected = graph_reference(&cell, &x.as_vec(), &a.as_vec(), h0.as_vec(), steps);
        assert_close!(out.as_vec(), expected, VALUES);
    }
    // A run-time node count gives the same states.
    let x_dyn: Tensor<(Const<2>, usize, Const<3>), f64, Dev> = x.clone().realize();
    let a_dyn: Tensor<(usize, usize), f64, Dev> = a.clone().realize();
    let out = try_run_graph(&cell, x_dyn, &a_dyn, 3, None).unwrap();
    assert_eq!(out.shape().concrete(), [2, 4, 5]);
    let expected = graph_reference(&cell, &x.as_vec(), &a.as_vec(), vec![0.0; 40], 3);
    assert_close!(out.as_vec(), expected, VALUES);
}

#[test]
fn graph_nodes_without_neighbours_evolve_alone() {
    let dev = typednet::test_device!();
    let cell = GraphRnnCell::<3, 5, f64, Dev>::build(&dev);
    let x: Tensor<Rank3<2, 4, 3>, f64, Dev> = dev.sample_normal();

    // A = 0: no node hears anything, H^K = tanh(X·W_inᵀ + b) for every K ≥ 1.
    let zero: Tensor<Rank2<4, 4>, f64, Dev> = dev.zeros();
    let once = (x
        .clone()
        .matmul(cell.weight_ih.clone().permute::<_, Axes2<1, 0>>())
        + cell.bias.clone().broadcast::<Rank3<2, 4, 5>, _>())
    .tanh();
    for steps in 1..4 {
        let out = try_run_graph(&cell, x.clone(), &zero, steps, None).unwrap();
        assert_close!(out.as_vec(), once.as_vec(), VALUES);
    }

    // A = I: each node hears only itself, K steps of an Elman cell on its own features.
    let identity: Tensor<Rank2<4, 4>, f64, Dev> = dev.tensor([
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]);
    let elman = ElmanCell::<3, 5, f64, Dev> {
        weight_ih: cell.weight_ih.clone(),
        weight_hh: cell.weight_hh.clone(),
        bias_ih: cell.bias.clone(),
        bias_hh: dev.zeros(),
    };
    let nodes = x.clone().reshape::<Rank2<8, 3>>();
    let out = try_run_graph(&cell, x.clone(), &identity, 3, None).unwrap();
    let sequence = nodes.broadcast::<Rank3<8, 3, 3>, Axis<1>>();
    let alone = try_run_last(&elman, sequence, None).unwrap();
    assert_close!(out.as_vec(), alone.as_vec(), VALUES);
    // And as the loops of its formula.
    let mut h = vec![0.0; 5];
    let (wi, wh, b) = (
        cell.weight_ih.as_vec(),
        cell.weight_hh.as_vec(),
        cell.bias.as_vec(),
    );
    let x0 = &x.as_vec()[..3];
    for _ in 0..3 {
        h = add(&add(&mat_vec(&wi, x0), &mat_vec(&wh, &h)), &b)
            .iter()
            .map(|z| z.tanh())
            .collect();
    }
    assert_close!(out.as_vec()[..5], h, VALUES);
}

/// `|∂(Σ h_0^K)/∂x_u|` summed over features, for each node `u` of the path 0–1–2, and the same
/// with respect to a given `H^0`. `None` when there is no device to run on (the caller skips).
fn path_dependence(steps: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    let dev = typednet::testing::test_device()?;
    let cell = GraphRnnCell::<2, 3, f64, Dev>::build(&dev);
    let path: Tensor<Rank2<3, 3>, f64, Dev> =
        dev.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]);
    let x: Tensor<Rank3<1, 3, 2>, f64, Dev> = dev.sample_normal();
    let h0: Tensor<Rank3<1, 3, 3>, f64, Dev> = dev.sample_normal();
    let node0: Tensor<Rank3<1, 3, 3>, f64, Dev> = dev.tensor([[[1.0; 3], [0.0; 3], [0.0; 3]]]);
    let per_node = |g: Vec<f64>, width: usize| -> Vec<f64> {
        g.chunks(width)
            .map(|c| c.iter().map(|g| g.abs()).sum())
            .collect()
    };
    let grads = (try_run_graph(&cell, x.leaky_trace(), &path, steps, None).unwrap()
        * node0.clone())
    .sum()
    .backward();
    let from_x = per_node(grads.get(&x).as_vec(), 2);
    let x_traced = x.leaky_trace();
    let h0_traced = h0.retaped::<Tape>();
    let grads = (try_run_graph(&cell, x_traced, &path, steps, Some(h0_traced)).unwrap() * node0)
        .sum()
        .backward();
    let from_h0 = per_node(grads.get(&h0).as_vec(), 3);
    Some((from_x, from_h0))
}

#[test]
fn graph_information_travels_one_edge_per_step() {
    // With H^0 = 0 the first step sees no neighbour: node 0 hears node 1's features from K = 2
    // on and node 2's, two edges away, from K = 3 on.
    let Some((x1, h1)) = path_dependence(1) else {
        return;
    };
    assert!(x1[0] > 1e-8 && x1[1] == 0.0 && x1[2] == 0.0, "{x1:?}");
    let Some((x2, h2)) = path_dependence(2) else {
        return;
    };
    assert!(x2[0] > 1e-8 && x2[1] > 1e-8 && x2[2] == 0.0, "{x2:?}");
    let Some((x3, _)) = path_dependence(3) else {
        return;
    };
    assert!(x3.iter().all(|g| *g > 1e-8), "{x3:?}");
    // A given H^0 is heard one step earlier: h_0^1 depends on h_1^0 but not on h_2^0 (nor on
    // h_0^0: no self-loop), h_0^2 on h_2^0 (and h_0^0, through node 1).
    assert!(h1[0] == 0.0 && h1[1] > 1e-8 && h1[2] == 0.0, "{h1:?}");
    assert!(h2[0] > 1e-8 && h2[1] == 0.0 && h2[2] > 1e-8, "{h2:?}");
}

#[test]
fn graph_gradients_match_finite_differences() {
    let dev = typednet::test_device!();
    let cell = GraphRnnCell::<3, 4, f64, Dev>::build(&dev);
    let x: Tensor<Rank3<2, 5, 3>, f64, Dev> = dev.sample_normal();
    let a: Tensor<Rank2<5, 5>, f64, Dev> = dev.sample_uniform();
    let h0: Tensor<Rank3<2, 5, 4>, f64, Dev> = dev.sample_normal();
    let g: Tensor<Rank3<2, 5, 4>, f64, Dev> = dev.sample_normal();
    let loss = |cell: &GraphRnnCell<3, 4, f64, Dev>, x: Tensor<Rank3<2, 5, 3>, f64, Dev, Tape>| {
        (try_run_graph(cell, x, &a, 3, None).unwrap() * g.clone()).sum()
    };
    check_gradient(&x, |x| loss(&cell, x)).assert_below(1e-6);
    check_gradient(&h0, |h0| {
        let x = x.retaped::<Tape>();
        (try_run_graph(&cell, x, &a, 3, Some(h0)).unwrap() * g.clone()).sum()
    })
    .assert_below(1e-6);
    check_parameter_gradient(
        &cell,
        |c| &mut c.weight_hh,
        |c, gradients| loss(c, x.trace(gradients)),
    )
    .assert_below(1e-6);
    check_parameter_gradient(
        &cell,
        |c| &mut c.weight_ih,
        |c, gradients| loss(c, x.trace(gradients)),
    )
    .assert_below(1e-6);
    check_parameter_gradient(
        &cell,
        |c| &mut c.bias,
        |c, gradients| loss(c, x.trace(gradients)),
    )
    .assert_below(1e-6);
}
