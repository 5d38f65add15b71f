"""The RBM recipe of `examples/mnist_rbm.rs` in PyTorch 2.15, on the same shipped digits: the test
log-likelihood (by AIS) that typednet's must come within 3 nats of (issue #8).

The shipped digits binarised at 0.5 (on when grey / 255 > 0.5), the first 8,000 to train and the
last 2,000 to test. RBM 784 x 500: W ~ N(0, 0.01^2), visible biases log(p / (1 - p)) of the
training pixels' means p clamped to [0.001, 0.999], hidden biases 0. CD-1 with learning rate 0.1,
batches of 100 in the data's order (no shuffling), no momentum or weight decay; the statistics use
p(h | v) at both ends, the chain binary samples (Hinton's practical guide).

log Z by annealed importance sampling (Salakhutdinov & Murray, 2008): 100 runs from the base-rate
model (W = 0, visible biases from the training pixels' means, hidden biases 0, so
log Z_0 = H log 2 + sum softplus(b_A)), through p*_beta(v) = exp((1 - beta) b_A.v + beta b.v)
prod_j (1 + exp(beta (c_j + v.W_j))), one Gibbs sweep per beta, the schedule 1,000 steps to 0.5,
4,000 to 0.9 and 10,000 to 1 (times `ais_fraction`). Reported: log Z with its standard error
(delta method) and the test log-likelihood mean(-F(v)) - log Z in nats per digit.

Run: /tmp/ref/bin/python tools/pytorch_mnist_rbm.py [epochs] [ais_fraction] [seeds...]
"""
import gzip
import math
import struct
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

DATA = Path(__file__).resolve().parent.parent / "data"
TRAIN, HIDDEN, BATCH, LEARNING_RATE, RUNS = 8000, 500, 100, 0.1, 100


def load():
    raw = gzip.open(DATA / "mnist10k-images-idx3-ubyte.gz").read()
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    assert magic == 0x803
    grey = torch.tensor(list(raw[16:]), dtype=torch.float32).reshape(count, rows * cols) / 255
    return (grey > 0.5).float()


def base_rate_bias(v):
    p = v.mean(0).clamp(1e-3, 1 - 1e-3)
    return torch.log(p) - torch.log1p(-p)


def free_energy(W, b, c, v):
    return -(v @ b) - F.softplus(c + v @ W).sum(1)


def schedule(fraction):
    betas = [torch.zeros(1, dtype=torch.float64)]
    start = 0.0
    for end, steps in [(0.5, 1000), (0.9, 4000), (1.0, 10000)]:
        n = max(1, round(steps * fraction))
        betas.append(torch.linspace(start, end, n + 1, dtype=torch.float64)[1:])
        start = end
    return torch.cat(betas).tolist()


def ais(W, b, c, base, betas):
    """log Z estimate and the log importance weights of RUNS parallel runs."""
    log_z0 = HIDDEN * math.log(2) + F.softplus(base.double()).sum().item()
    v = torch.bernoulli(torch.sigmoid(base).expand(RUNS, -1))
    log_w = torch.zeros(RUNS, dtype=torch.float64)
    for k in range(1, len(betas)):
        before, now = betas[k - 1], betas[k]
        x = c + v @ W
        increment = (now - before) * (v @ (b - base)) + (
            F.softplus(now * x) - F.softplus(before * x)
        ).sum(1)
        log_w += increment.double()
        if k < len(betas) - 1:
            h = torch.bernoulli(torch.sigmoid(now * x))
            v = torch.bernoulli(torch.sigmoid(now * (b + h @ W.T) + (1 - now) * base))
    log_mean = torch.logsumexp(log_w, 0).item() - math.log(RUNS)
    relative = torch.exp(log_w - log_w.max())
    standard_error = (relative.std() / math.sqrt(RUNS) / relative.mean()).item()
    ess = (relative.sum() ** 2 / (relative**2).sum()).item()
    return log_z0 + log_mean, standard_error, ess


def run(epochs, fraction, seed, digits):
    torch.manual_seed(seed)
    train, test = digits[:TRAIN], digits[TRAIN:]
    W = 0.01 * torch.randn(784, HIDDEN)
    b = base_rate_bias(train)
    c = torch.zeros(HIDDEN)
    start = time.time()
    for epoch in range(epochs):
        tick, error = time.time(), 0.0
        for i in range(0, TRAIN, BATCH):
            v0 = train[i : i + BATCH]
            h0 = torch.sigmoid(c + v0 @ W)
            reconstruction = torch.sigmoid(b + h0 @ W.T)
            error += ((v0 - reconstruction) ** 2).sum().item() / BATCH
            v1 = torch.bernoulli(torch.sigmoid(b + torch.bernoulli(h0) @ W.T))
            h1 = torch.sigmoid(c + v1 @ W)
            W += LEARNING_RATE * (v0.T @ h0 - v1.T @ h1) / BATCH
            b += LEARNING_RATE * (v0 - v1).mean(0)
            c += LEARNING_RATE * (h0 - h1).mean(0)
        print(
            f"seed {seed} epoch {epoch + 1}: reconstruction error {error / (TRAIN // BATCH):.2f} "
            f"({time.time() - tick:.1f} s)"
        )
    training = time.time() - start
    betas = schedule(fraction)
    tick = time.time()
    log_z, standard_error, ess = ais(W, b, c, base_rate_bias(train), betas)
    annealing = time.time() - tick
    test_ll = -free_energy(W, b, c, test).double().mean().item() - log_z
    train_ll = -free_energy(W, b, c, train).double().mean().item() - log_z
    print(
        f"seed {seed}: log Z {log_z:.2f} +- {standard_error:.2f} (AIS, {RUNS} runs, "
        f"{len(betas) - 1} steps, {annealing:.1f} s, ESS {ess:.1f}); test log-likelihood "
        f"{test_ll:.2f} nats (train {train_ll:.2f}); training {training:.1f} s"
    )


if __name__ == "__main__":
    # One thread: the machine is shared, and OpenMP threads that wait on each other crawl there.
    torch.set_num_threads(1)
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    fraction = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    seeds = [int(s) for s in sys.argv[3:]] or [0]
    digits = load()
    for seed in seeds:
        run(epochs, fraction, seed, digits)
