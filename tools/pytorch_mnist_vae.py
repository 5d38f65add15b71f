"""The VAE recipe of `examples/mnist_vae.rs` in PyTorch 2.15, on the same shipped digits: the test
ELBO typednet's must come within 2 nats of (issue #7).

Model 784-400-20-400-784: a ReLU layer of 400, two linear heads for mu and log sigma^2 (20 each),
z = mu + exp(logvar / 2) * eps, a decoder 20-400 (ReLU)-784 giving Bernoulli logits. Loss: the
negative ELBO, BCE from logits summed over pixels plus the closed-form KL, averaged over the batch.
First 8,000 digits to train, last 2,000 to test, pixels in [0, 1] (grey, not binarised), batch 128
(shuffled), Adam 1e-3, PyTorch's default initialisation. Reported: the test ELBO in nats per digit,
one z sample per digit, and the test reconstruction term and KL apart.

Run: /tmp/ref/bin/python tools/pytorch_mnist_vae.py [epochs] [seeds...]
"""
import gzip
import struct
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

DATA = Path(__file__).resolve().parent.parent / "data"


def load():
    raw = gzip.open(DATA / "mnist10k-images-idx3-ubyte.gz").read()
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    assert magic == 0x803
    return torch.tensor(list(raw[16:]), dtype=torch.float32).reshape(count, rows * cols) / 255


class Vae(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(784, 400)
        self.mean = nn.Linear(400, 20)
        self.log_variance = nn.Linear(400, 20)
        self.decoder = nn.Sequential(nn.Linear(20, 400), nn.ReLU(), nn.Linear(400, 784))

    def terms(self, x):
        h = F.relu(self.hidden(x))
        mu, logvar = self.mean(h), self.log_variance(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        nll = F.binary_cross_entropy_with_logits(self.decoder(z), x, reduction="sum") / len(x)
        kl = 0.5 * (mu**2 + logvar.exp() - logvar - 1).sum(1).mean()
        return nll, kl


def run(epochs, seed, digits):
    torch.manual_seed(seed)
    train, test = digits[:8000], digits[8000:]
    model = Vae()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.time()
    for epoch in range(epochs):
        total = 0.0
        order = torch.randperm(len(train))
        for i in range(0, len(train), 128):
            nll, kl = model.terms(train[order[i : i + 128]])
            loss = nll + kl
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(order[i : i + 128])
        print(f"seed {seed} epoch {epoch + 1}: train -ELBO {total / len(train):.2f}")
    seconds = time.time() - start
    with torch.no_grad():
        nll, kl = model.terms(test)
    print(
        f"seed {seed}: test ELBO {-(nll + kl).item():.2f} nats "
        f"(reconstruction {-nll.item():.2f}, KL {kl.item():.2f}), {seconds / epochs:.2f} s per epoch"
    )


if __name__ == "__main__":
    torch.set_num_threads(2)
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    seeds = [int(s) for s in sys.argv[2:]] or [0, 1]
    digits = load()
    for seed in seeds:
        run(epochs, seed, digits)
