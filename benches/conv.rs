//! Convolution, transposed convolution and max pooling on the CPU, forward and forward + backward, and the rate of
//! dfdx's single-precision matmul measured in the same run (issue #3, part 4).
//!
//! Every case is one line of [`benches`]; `benches/compare/pytorch_benches.py` holds the PyTorch
//! twin of each under the same name, and `benches/compare/run.sh conv` runs both side by side.
//!
//! - `fwd_bwd`: the op on a traced input, loss = sum of the output, backward (gradients of the
//!   input, the weights and the bias). The layer's gradient buffers are reused from one
//!   iteration to the next and zeroed, as in a training loop.
//! - `fwd`: the op on an untraced input (inference).
//! - `gemm/sgemm_2048`: `a.matmul(b)` of two 2048×2048 f32 matrices; criterion's throughput is
//!   the FLOP count (2·n³), so its report reads in GFLOP/s ("Gelem/s").
//! - `gemm/typednet_{M}x{K}x{N}[_bt]`: typednet's own GEMM ([`typednet::gemm`]) on `[M, K]·[K, N]`
//!   (`_bt`: the right operand stored transposed, `[N, K]`, as a linear layer's weight is), the
//!   2048³ product and the products of the MLP 784-256-128-10's training step at batch 128.
//!
//! `cargo bench --bench conv` (all), `cargo bench --bench conv -- conv/32to32` (a subset).
//! Threads: rayon's default, `RAYON_NUM_THREADS` to set it.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};
use dfdx::nn::BuildModule;
use typednet::layers::{Conv2d, ConvTranspose2d, GroupedConv2d};
use typednet::ops::grouped_conv2d::try_grouped_conv2d;
use typednet::ops::{
    try_conv2d, try_conv_transpose2d, try_max_pool2d, Conv2dGeometry, ConvTranspose2dGeometry,
    Pool2dGeometry,
};
use typednet::prelude::*;

/// `conv/{C_IN}to{C_OUT}_k{K}[p{PAD}]_{H}x{H}_b{B}/{fwd_bwd,fwd}`: a square convolution, stride 1,
/// zero padding `pad`, on a batch of `B` random images of `C_IN × H × H`; `O` is the output size
/// `H − K + 2·pad + 1`, which the op checks.
fn conv_case<
    const B: usize,
    const C_IN: usize,
    const C_OUT: usize,
    const K: usize,
    const H: usize,
    const O: usize,
>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    pad: usize,
) {
    let padding = if pad == 0 {
        String::new()
    } else {
        format!("p{pad}")
    };
    let name = format!("{C_IN}to{C_OUT}_k{K}{padding}_{H}x{H}_b{B}");
    let dev = Cpu::seed_from_u64(0);
    let layer = Conv2d::<C_IN, C_OUT, K, K, f32, Cpu>::build(&dev);
    let x: Tensor<Rank4<B, C_IN, H, H>, f32, Cpu> = dev.sample_normal();
    let geometry = Conv2dGeometry {
        stride: [1, 1],
        padding: [pad, pad],
    };
    // An Option so the closure can move the gradients into the tape and take them back.
    let mut grads = Some(layer.alloc_grads());
    group.bench_function(format!("{name}/fwd_bwd"), |b| {
        b.iter(|| {
            let y: Tensor<Rank4<B, C_OUT, O, O>, f32, Cpu, _> =
                try_conv2d(x.clone().traced(grads.take().unwrap()), &layer, geometry).unwrap();
            let mut g = y.sum().backward();
            layer.zero_grads(&mut g);
            grads = Some(g);
        })
    });
    group.bench_function(format!("{name}/fwd"), |b| {
        b.iter(|| {
            let y: Tensor<Rank4<B, C_OUT, O, O>, f32, Cpu> =
                try_conv2d(x.clone(), &layer, geometry).unwrap();
            black_box(y)
        })
    });
}

/// `conv/{C_IN}to{C_OUT}_g{G}_k{K}[p{PAD}]_{H}x{H}_b{B}/{fwd_bwd,fwd}`: a square grouped
/// convolution (`G` groups of `C_IN_PER_GROUP = C_IN/G` input channels and `C_OUT/G` filters),
/// stride 1, zero padding `pad`, on a batch of `B` random images of `C_IN × H × H`; `O` is the
/// output size `H − K + 2·pad + 1`, which the op checks. Timed as `conv_case`.
fn grouped_conv_case<
    const B: usize,
    const C_IN: usize,
    const C_IN_PER_GROUP: usize,
    const C_OUT: usize,
    const G: usize,
    const K: usize,
    const H: usize,
    const O: usize,
>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    pad: usize,
) {
    let padding = if pad == 0 {
        String::new()
    } else {
        format!("p{pad}")
    };
    let name = format!("{C_IN}to{C_OUT}_g{G}_k{K}{padding}_{H}x{H}_b{B}");
    let dev = Cpu::seed_from_u64(0);
    let layer = GroupedConv2d::<C_IN_PER_GROUP, C_OUT, G, K, K, f32, Cpu>::build(&dev);
    let x: Tensor<Rank4<B, C_IN, H, H>, f32, Cpu> = dev.sample_normal();
    let geometry = Conv2dGeometry {
        stride: [1, 1],
        padding: [pad, pad],
    };
    let mut grads = Some(layer.alloc_grads());
    group.bench_function(format!("{name}/fwd_bwd"), |b| {
        b.iter(|| {
            let y: Tensor<Rank4<B, C_OUT, O, O>, f32, Cpu, _> =
                try_grouped_conv2d(x.clone().traced(grads.take().unwrap()), &layer, geometry)
                    .unwrap();
            let mut g = y.sum().backward();
            layer.zero_grads(&mut g);
            grads = Some(g);
        })
    });
    group.bench_function(format!("{name}/fwd"), |b| {
        b.iter(|| {
            let y: Tensor<Rank4<B, C_OUT, O, O>, f32, Cpu> =
                try_grouped_conv2d(x.clone(), &layer, geometry).unwrap();
            black_box(y)
        })
    });
}

/// `conv/transpose_{C_IN}to{C_OUT}_k{K}s{S}p{PAD}_{H}x{H}_b{B}/{fwd_bwd,fwd}`: a square transposed
/// convolution with stride `S` and padding `PAD` (no output padding), on a batch of `B` random
/// images of `C_IN × H × H`; `O` is the output size `(H − 1)·S − 2·PAD + K`, which the op
/// checks. Timed as `conv_case`.
fn conv_transpose_case<
    const B: usize,
    const C_IN: usize,
    const C_OUT: usize,
    const K: usize,
    const H: usize,
    const O: usize,
>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    stride: usize,
    pad: usize,
) {
    let name = format!("transpose_{C_IN}to{C_OUT}_k{K}s{stride}p{pad}_{H}x{H}_b{B}");
    let dev = Cpu::seed_from_u64(0);
    let layer = ConvTranspose2d::<C_IN, C_OUT, K, K, f32, Cpu>::build(&dev);
    let x: Tensor<Rank4<B, C_IN, H, H>, f32, Cpu> = dev.sample_normal();
    let geometry = ConvTranspose2dGeometry {
        stride: [stride, stride],
        padding: [pad, pad],
        output_padding: [0, 0],
    };
    let mut grads = Some(layer.alloc_grads());
    group.bench_function(format!("{name}/fwd_bwd"), |b| {
        b.iter(|| {
            let y: Tensor<Rank4<B, C_OUT, O, O>, f32, Cpu, _> =
                try_conv_transpose2d(x.clone().traced(grads.take().unwrap()), &layer, geometry)
                    .unwrap();
            let mut g = y.sum().backward();
            layer.zero_grads(&mut g);
            grads = Some(g);
        })
    });
    group.bench_function(format!("{name}/fwd"), |b| {
        b.iter(|| {
            let y: Tensor<Rank4<B, C_OUT, O, O>, f32, Cpu> =
                try_conv_transpose2d(x.clone(), &layer, geometry).unwrap();
            black_box(y)
        })
    });
}

/// `maxpool/{F}x{F}_{C}c_{H}x{H}_b{B}/{fwd_bwd,fwd}`: max pooling with an `F × F` window and
/// stride `F`; `O = H / F`.
fn maxpool_case<const B: usize, const C: usize, const H: usize, const F: usize, const O: usize>(
    group: &mut BenchmarkGroup<'_, WallTime>,
) {
    let name = format!("{F}x{F}_{C}c_{H}x{H}_b{B}");
    let dev = Cpu::seed_from_u64(0);
    let x: Tensor<Rank4<B, C, H, H>, f32, Cpu> = dev.sample_normal();
    let geometry = Pool2dGeometry {
        window: [F, F],
        stride: [F, F],
    };
    group.bench_function(format!("{name}/fwd_bwd"), |b| {
        b.iter(|| {
            let y: Tensor<Rank4<B, C, O, O>, f32, Cpu, _> =
                try_max_pool2d(x.clone().leaky_trace(), geometry).unwrap();
            black_box(y.sum().backward())
        })
    });
    group.bench_function(format!("{name}/fwd"), |b| {
        b.iter(|| {
            let y: Tensor<Rank4<B, C, O, O>, f32, Cpu> =
                try_max_pool2d(x.clone(), geometry).unwrap();
            black_box(y)
        })
    });
}

/// `gemm/sgemm_{N}`: dfdx's matmul of two `N × N` f32 matrices, with a throughput of 2·N³ FLOPs.
fn gemm_case<const N: usize>(c: &mut Criterion) {
    let dev = Cpu::seed_from_u64(0);
    let a: Tensor<Rank2<N, N>, f32, Cpu> = dev.sample_normal();
    let b: Tensor<Rank2<N, N>, f32, Cpu> = dev.sample_normal();
    let mut group = c.benchmark_group("gemm");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(2 * (N as u64).pow(3)));
    group.bench_function(format!("sgemm_{N}"), |bench| {
        bench.iter(|| black_box(a.clone().matmul(b.clone())))
    });
    group.finish();
}

/// `gemm/typednet_{M}x{K}x{N}[_bt]`: [`typednet::gemm::gemm`] of `[M, K]` by `[K, N]`, the right
/// operand stored `[N, K]` and read transposed when `transposed_b`.
fn typednet_gemm_case(c: &mut Criterion, [m, k, n]: [usize; 3], transposed_b: bool) {
    use typednet::gemm::{gemm, MatrixRef};
    let values = |len: usize| {
        (0..len)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect::<Vec<f32>>()
    };
    let (a, b) = (values(m * k), values(k * n));
    let mut out = vec![0.0f32; m * n];
    let mut group = c.benchmark_group("gemm");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(2 * (m * k * n) as u64));
    let suffix = if transposed_b { "_bt" } else { "" };
    group.bench_function(format!("typednet_{m}x{k}x{n}{suffix}"), |bench| {
        bench.iter(|| {
            let a = MatrixRef::row_major(&a, m, k);
            let b = if transposed_b {
                MatrixRef::row_major(&b, n, k).t()
            } else {
                MatrixRef::row_major(&b, k, n)
            };
            gemm(a, b, &mut out, false);
            black_box(&out);
        })
    });
    group.finish();
}

/// The cases. Adding one: a line here and an entry of the same name in
/// `benches/compare/pytorch_benches.py`.
fn benches(c: &mut Criterion) {
    let mut conv = c.benchmark_group("conv");
    conv.sampling_mode(SamplingMode::Flat);
    // LeNet-5's first layer on 32×32 (no padding): 28×28 out.
    conv_case::<64, 1, 6, 5, 32, 28>(&mut conv, 0);
    // VGG-style blocks: 3×3, pad 1, size kept.
    conv_case::<32, 32, 32, 3, 32, 32>(&mut conv, 1);
    conv_case::<32, 64, 64, 3, 16, 16>(&mut conv, 1);
    // AlexNet's conv2 at batch 8: 96 → 256 channels in 2 groups, 5×5, pad 2 keeps 27×27.
    grouped_conv_case::<8, 96, 48, 256, 2, 5, 27, 27>(&mut conv, 2);
    // DCGAN's generator: 4×4, stride 2, pad 1 doubles the size.
    conv_transpose_case::<32, 64, 32, 4, 16, 32>(&mut conv, 2, 1);
    conv.finish();

    let mut pool = c.benchmark_group("maxpool");
    pool.sampling_mode(SamplingMode::Flat);
    maxpool_case::<32, 32, 32, 2, 16>(&mut pool);
    pool.finish();

    gemm_case::<2048>(c);
    typednet_gemm_case(c, [2048, 2048, 2048], false);
    // The MLP's step: forward x·Wᵀ, then ∂x = ∂y·W and ∂W = ∂yᵀ·x (the latter as [256, 128]·[128, 784]).
    typednet_gemm_case(c, [128, 784, 256], true);
    typednet_gemm_case(c, [128, 256, 784], false);
    typednet_gemm_case(c, [256, 128, 784], false);
}

criterion_group! {
    name = conv;
    // Few samples with flat sampling keep the slow cases short; the command line overrides
    // these (`--sample-size`, `--warm-up-time`, `--measurement-time`).
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(conv);
