#!/usr/bin/env python3
"""The PyTorch twins of typednet's criterion benches (benches/conv.rs, benches/training.rs).

Every case has the name of its Rust twin and does the same work on the CPU, in float32, on
random data. Times are taken the way criterion's flat sampling takes them (warm up for a while,
then `--sample-size` samples of equally many iterations filling `--measurement-time`; the
figure is the median of the per-sample means) and printed in criterion's `bencher` format:

    test conv/32to32_k3p1_32x32_b32/fwd_bwd ... bench:    19912345 ns/iter (+/- 123456)

so that benches/compare/compare.py reads both sides with one parser.

Run (a Python with torch==2.15.0; never a dependency of the crate):

    /tmp/ref/bin/python benches/compare/pytorch_benches.py [--threads 2] [FILTER ...]
    /tmp/ref/bin/python benches/compare/pytorch_benches.py --list

A FILTER selects the cases whose name contains it (all cases when none is given). With
`--serve`, case names are read from stdin, one a line, and each is answered with its line.

Adding a case: one entry in CASES below (a name and a function that builds the inputs and
returns the step to time), plus its Rust twin under the same name.
"""

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

# name -> (setup, flops): setup() builds the model and data and returns the zero-argument
# function to time; flops is the floating-point work of one call (None where a rate means little).
CASES = {}


def conv_flops(batch, c_in, c_out, k, out_size):
    """Multiply-adds of one forward convolution, times 2: 2·B·O_H·O_W·C_OUT·C_IN·K_H·K_W."""
    return 2 * batch * out_size * out_size * c_out * c_in * k * k


def add_conv(batch, c_in, c_out, k, size, pad, groups=1):
    """`conv/{C_IN}to{C_OUT}[_g{G}]_k{K}[p{PAD}]_{H}x{H}_b{B}/{fwd_bwd,fwd}`, as `conv_case` (and,
    with groups, `grouped_conv_case`) in conv.rs."""
    out = size - k + 2 * pad + 1
    grouping = f"_g{groups}" if groups > 1 else ""
    name = f"conv/{c_in}to{c_out}{grouping}_k{k}{f'p{pad}' if pad else ''}_{size}x{size}_b{batch}"

    def setup(train):
        conv = nn.Conv2d(c_in, c_out, k, padding=pad, groups=groups)
        x = torch.randn(batch, c_in, size, size, requires_grad=train)

        def fwd_bwd():
            # Gradients of the input, the weights and the bias, freed and reallocated as
            # PyTorch's zero_grad() does by default.
            x.grad = None
            conv.zero_grad()
            conv(x).sum().backward()

        def fwd():
            with torch.no_grad():
                return conv(x)

        return fwd_bwd if train else fwd

    # Forward + backward: the forward, the weight gradient and the input gradient, each as
    # much work as the forward. Each filter of a grouped convolution sees C_IN/G channels.
    flops = conv_flops(batch, c_in // groups, c_out, k, out)
    CASES[f"{name}/fwd_bwd"] = (lambda: setup(True), 3 * flops)
    CASES[f"{name}/fwd"] = (lambda: setup(False), flops)


def add_conv_transpose(batch, c_in, c_out, k, size, stride, pad):
    """`conv/transpose_{C_IN}to{C_OUT}_k{K}s{S}p{PAD}_{H}x{H}_b{B}/{fwd_bwd,fwd}`, as
    `conv_transpose_case` in conv.rs."""
    name = f"conv/transpose_{c_in}to{c_out}_k{k}s{stride}p{pad}_{size}x{size}_b{batch}"

    def setup(train):
        conv = nn.ConvTranspose2d(c_in, c_out, k, stride=stride, padding=pad)
        x = torch.randn(batch, c_in, size, size, requires_grad=train)

        def fwd_bwd():
            x.grad = None
            conv.zero_grad()
            conv(x).sum().backward()

        def fwd():
            with torch.no_grad():
                return conv(x)

        return fwd_bwd if train else fwd

    # The same multiply-adds as the convolution it transposes: one per (input cell, output
    # channel, kernel cell) pair, 2·B·H·W·C_IN·C_OUT·K².
    flops = conv_flops(batch, c_in, c_out, k, size)
    CASES[f"{name}/fwd_bwd"] = (lambda: setup(True), 3 * flops)
    CASES[f"{name}/fwd"] = (lambda: setup(False), flops)


def add_maxpool(batch, channels, size, window):
    """`maxpool/{F}x{F}_{C}c_{H}x{H}_b{B}/{fwd_bwd,fwd}`, as `maxpool_case` in conv.rs."""
    name = f"maxpool/{window}x{window}_{channels}c_{size}x{size}_b{batch}"

    def setup(train):
        x = torch.randn(batch, channels, size, size, requires_grad=train)

        def fwd_bwd():
            x.grad = None
            F.max_pool2d(x, window).sum().backward()

        def fwd():
            with torch.no_grad():
                return F.max_pool2d(x, window)

        return fwd_bwd if train else fwd

    CASES[f"{name}/fwd_bwd"] = (lambda: setup(True), None)
    CASES[f"{name}/fwd"] = (lambda: setup(False), None)


def add_gemm(n):
    """`gemm/sgemm_{N}`: torch.mm of two N×N float32 matrices (MKL on x86), 2·N³ FLOPs."""

    def setup():
        a = torch.randn(n, n)
        b = torch.randn(n, n)
        return lambda: torch.mm(a, b)

    CASES[f"gemm/sgemm_{n}"] = (setup, 2 * n**3)


def add_typednet_gemm(m, k, n, transposed_b):
    """`gemm/typednet_{M}x{K}x{N}[_bt]`: torch.mm of [M, K] by [K, N] (`_bt`: by the transpose of
    a stored [N, K], as nn.Linear's weight), the twin of typednet's own GEMM."""

    def setup():
        a = torch.randn(m, k)
        if transposed_b:
            w = torch.randn(n, k)
            return lambda: torch.mm(a, w.t())
        b = torch.randn(k, n)
        return lambda: torch.mm(a, b)

    suffix = "_bt" if transposed_b else ""
    CASES[f"gemm/typednet_{m}x{k}x{n}{suffix}"] = (setup, 2 * m * k * n)


def mlp():
    return nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )


def lenet5():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


def vgg_small():
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 8 * 8, 256), nn.ReLU(),
        nn.Linear(256, 10),
    )


def add_model(name, build, input_shape, batch, classes=10):
    """`train/{name}` (a training step) and `infer/{name}` (a forward without autograd), as
    `training_step` and `inference` in training.rs: Adam lr 1e-3, F.cross_entropy against the
    integer labels i·7 mod classes."""

    def train_setup():
        net = build()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        x = torch.randn(batch, *input_shape)
        labels = torch.tensor([i * 7 % classes for i in range(batch)])

        def step():
            loss = F.cross_entropy(net(x), labels)
            loss.backward()
            opt.step()
            opt.zero_grad()

        return step

    def infer_setup():
        net = build()
        x = torch.randn(batch, *input_shape)

        def forward():
            with torch.no_grad():
                return net(x)

        return forward

    CASES[f"train/{name}"] = (train_setup, None)
    CASES[f"infer/{name}"] = (infer_setup, None)


class BasicBlock(nn.Module):
    """torchvision's ResNet basic block (written out, so the comparison needs no torchvision)."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        return F.relu(self.body(x) + self.shortcut(x))


def resnet18():
    """torchvision's `resnet18()`: 11,689,512 parameters, as typednet's zoo declaration."""
    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
              nn.MaxPool2d(3, 2, 1)]
    c_in = 64
    for c, stride in [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)]:
        layers.append(BasicBlock(c_in, c, stride))
        c_in = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000)]
    net = nn.Sequential(*layers)
    assert sum(p.numel() for p in net.parameters()) == 11_689_512
    return net


def alexnet_conv1():
    return nn.Sequential(nn.Conv2d(3, 96, 11, 4), nn.ReLU())


class ManyToOne(nn.Module):
    """A recurrent classifier: the fused nn.LSTM or nn.GRU over 32 steps of 64 features, a linear
    layer on the last hidden state (issue #6's speed case)."""

    def __init__(self, kind):
        super().__init__()
        self.rnn = (nn.LSTM if kind == "lstm" else nn.GRU)(64, 128, batch_first=True)
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        _, state = self.rnn(x)
        h = state[0] if isinstance(state, tuple) else state
        return self.head(h[-1])


def only(kind, name):
    """Keeps one of the two cases `add_model` registers (the other has no Rust twin)."""
    other = "infer" if kind == "train" else "train"
    del CASES[f"{other}/{name}"]


def add_autoencoders():
    """`train/autoencoder_…` and `train/vae_…`, as benches/autoencoder.rs: inputs uniform in
    [0, 1], batch 128, Adam 1e-3; the deep autoencoder on MSE against its input, the VAE on the
    Bernoulli NLL from logits (summed, per example) plus the closed-form KL, one sample."""

    def deep_setup():
        net = nn.Sequential(
            nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 64),
            nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 784), nn.Sigmoid(),
        )
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        x = torch.rand(128, 784)

        def step():
            loss = F.mse_loss(net(x), x)
            loss.backward()
            opt.step()
            opt.zero_grad()

        return step

    class Vae(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(784, 400)
            self.mean = nn.Linear(400, 20)
            self.log_variance = nn.Linear(400, 20)
            self.decoder = nn.Sequential(nn.Linear(20, 400), nn.ReLU(), nn.Linear(400, 784))

        def forward(self, x):
            h = F.relu(self.hidden(x))
            mu, logvar = self.mean(h), self.log_variance(h)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            nll = F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="sum") / len(x)
            return nll + 0.5 * (mu**2 + logvar.exp() - logvar - 1).sum(1).mean()

    def vae_setup():
        net = Vae()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        x = torch.rand(128, 784)

        def step():
            loss = net(x)
            loss.backward()
            opt.step()
            opt.zero_grad()

        return step

    CASES["train/autoencoder_784-256-64-256-784_b128"] = (deep_setup, None)
    CASES["train/vae_784-400-20-400-784_b128"] = (vae_setup, None)


def add_generative():
    """`train/rbm_cd1_…` and `train/gan_…`, as benches/generative.rs."""

    def rbm_setup():
        w = torch.randn(784, 256) * 0.01
        b, c = torch.zeros(784), torch.zeros(256)
        v0 = torch.bernoulli(torch.full((64, 784), 0.5))

        def step():
            # CD-1 as in typednet: binary samples along the chain, hidden probabilities for the
            # statistics, each averaged over the batch.
            h0 = torch.sigmoid(v0 @ w + c)
            v1 = torch.bernoulli(torch.sigmoid(torch.bernoulli(h0) @ w.T + b))
            h1 = torch.sigmoid(v1 @ w + c)
            w.add_((v0.T @ h0 - v1.T @ h1) * (0.05 / 64))
            b.add_((v0 - v1).mean(0) * 0.05)
            c.add_((h0 - h1).mean(0) * 0.05)

        return step

    def gan_setup():
        g = nn.Sequential(nn.Linear(64, 256), nn.LeakyReLU(0.2), nn.Linear(256, 784), nn.Sigmoid())
        d = nn.Sequential(nn.Linear(784, 256), nn.LeakyReLU(0.2), nn.Linear(256, 1))
        g_opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        d_opt = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        real = torch.rand(64, 784)
        ones, zeros = torch.ones(64, 1), torch.zeros(64, 1)

        def step():
            with torch.no_grad():
                fake = g(torch.randn(64, 64))
            d_loss = F.binary_cross_entropy_with_logits(d(real), ones) + \
                F.binary_cross_entropy_with_logits(d(fake), zeros)
            d_opt.zero_grad()
            d_loss.backward()
            d_opt.step()
            g_loss = F.binary_cross_entropy_with_logits(d(g(torch.randn(64, 64))), ones)
            g_opt.zero_grad()
            g_loss.backward()
            g_opt.step()

        return step

    CASES["train/rbm_cd1_784x256_b64"] = (rbm_setup, None)
    CASES["train/gan_g64-256-784_d784-256-1_b64"] = (gan_setup, None)


# The cases: one line each, in the order of the Rust files.
add_conv(batch=64, c_in=1, c_out=6, k=5, size=32, pad=0)
add_conv(batch=32, c_in=32, c_out=32, k=3, size=32, pad=1)
add_conv(batch=32, c_in=64, c_out=64, k=3, size=16, pad=1)
# AlexNet's conv2 at batch 8: 96 → 256 channels in 2 groups, 5×5, pad 2 keeps 27×27.
add_conv(batch=8, c_in=96, c_out=256, k=5, size=27, pad=2, groups=2)
add_conv_transpose(batch=32, c_in=64, c_out=32, k=4, size=16, stride=2, pad=1)
add_maxpool(batch=32, channels=32, size=32, window=2)
add_gemm(2048)
add_typednet_gemm(2048, 2048, 2048, False)
add_typednet_gemm(128, 784, 256, True)
add_typednet_gemm(128, 256, 784, False)
add_typednet_gemm(256, 128, 784, False)
add_model("mlp_784-256-128-10_b128", mlp, (784,), 128)
# typednet's MLP written by hand in dfdx; PyTorch has one MLP, timed again beside it.
add_model("mlp_by_hand_dfdx_b128", mlp, (784,), 128)
add_model("lenet5_b64", lenet5, (1, 28, 28), 64)
add_model("vgg_small_b32", vgg_small, (3, 32, 32), 32)
add_model("resnet18_64x64_b8", resnet18, (3, 64, 64), 8, classes=1000)
only("train", "resnet18_64x64_b8")
add_model("resnet18_224x224_b1", lambda: resnet18().eval(), (3, 224, 224), 1, classes=1000)
only("infer", "resnet18_224x224_b1")
add_model("alexnet_conv1_227x227_b1", alexnet_conv1, (3, 227, 227), 1)
only("infer", "alexnet_conv1_227x227_b1")
add_model("lstm_t32_i64_h128_b32", lambda: ManyToOne("lstm"), (32, 64), 32)
only("train", "lstm_t32_i64_h128_b32")
add_model("gru_t32_i64_h128_b32", lambda: ManyToOne("gru"), (32, 64), 32)
only("train", "gru_t32_i64_h128_b32")
add_autoencoders()
add_generative()


def measure(fn, warm_up, measurement, samples):
    """Median and standard deviation of the per-iteration time (ns) over `samples` samples of
    equally many iterations, after `warm_up` seconds of running: criterion's flat sampling."""
    start = time.perf_counter()
    runs = 0
    while True:
        fn()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= warm_up:
            break
    per_iter = elapsed / runs
    iters = max(1, round(measurement / (samples * per_iter)))
    means = []
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(iters):
            fn()
        means.append((time.perf_counter() - start) / iters * 1e9)
    return statistics.median(means), statistics.stdev(means) if len(means) > 1 else 0.0


def run_case(name, args):
    setup, _ = CASES[name]
    torch.manual_seed(0)
    median, std = measure(setup(), args.warm_up_time, args.measurement_time, args.sample_size)
    return f"test {name} ... bench: {int(median):>11} ns/iter (+/- {int(std)})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("filters", nargs="*", help="run the cases whose name contains one of these")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: PyTorch's choice)")
    parser.add_argument("--warm-up-time", type=float, default=1.0, help="seconds (default 1)")
    parser.add_argument("--measurement-time", type=float, default=3.0, help="seconds (default 3)")
    parser.add_argument("--sample-size", type=int, default=10, help="samples (default 10)")
    parser.add_argument("--list", action="store_true",
                        help="print the cases, one a line: name, then FLOPs per call or -")
    parser.add_argument("--serve", action="store_true",
                        help="read case names from stdin and answer each with its line")
    args = parser.parse_args()

    if args.list:
        for name, (_, flops) in CASES.items():
            print(f"{name}\t{flops if flops is not None else '-'}")
        return
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.serve:
        print(f"ready torch {torch.__version__} threads {torch.get_num_threads()}", flush=True)
        for line in sys.stdin:
            name = line.strip()
            if not name:
                continue
            if name not in CASES:
                print(f"unknown {name}", flush=True)
                continue
            print(run_case(name, args), flush=True)
        return
    for name in CASES:
        if not args.filters or any(f in name for f in args.filters):
            print(run_case(name, args), flush=True)


if __name__ == "__main__":
    main()
