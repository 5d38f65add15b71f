"""The GAN recipe of `examples/mnist_gan.rs` in PyTorch 2.15, on the same shipped digits: the
reference for the classifier score of typednet's GAN samples (issue #8, part 1).

GAN: G 64 -> 256 -> 512 -> 1024 -> 784 (leaky ReLU 0.2, tanh out), D 784 -> 512 -> 256 -> 1 (leaky
ReLU 0.2 and dropout 0.3 after each hidden layer, a logit out); z ~ N(0, I); pixels scaled to
[-1, 1] for training and back to [0, 1] for the judge. One discriminator step (BCE with logits: 1 for real, 0 for G's
samples, the two means summed) then one generator step with the non-saturating loss
(BCE(D(G(z)), 1)); Adam 2e-4, betas (0.5, 0.999) for both; batch 64 of the first 8,000 digits
shuffled each epoch. The conditional GAN appends the one-hot class to G's
noise and to D's input (times 5, see CONDITION_SCALE), and its D also learns to reject real digits
paired with a wrong class (Reed et al. 2016): D's loss is BCE(real, 1) + 0.5 BCE(fake, 0) +
0.5 BCE(real with a wrong class, 0). PyTorch's default initialisation.

Judge: LeNet-5 (conv 6@5x5 pad 2, relu, maxpool 2, conv 16@5x5, relu, maxpool 2, 120, 84, 10)
trained 10 epochs, batch 64, Adam 1e-3 on the first 8,000 digits. Reported: the classifier score
exp E_x KL(p(y|x) || p(y)) of the last 2,000 (real) digits, of 2,000 GAN samples and of 2,000
uniform-noise images; and for the conditional GAN the share of 1,000 samples (100 per class)
classified as the class asked for.

Run: /tmp/ref/bin/python tools/pytorch_mnist_gan.py [epochs] [seeds...]
"""
import gzip
import os
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
    images = torch.tensor(list(raw[16:]), dtype=torch.float32).reshape(count, rows * cols) / 255
    raw = gzip.open(DATA / "mnist10k-labels-idx1-ubyte.gz").read()
    labels = torch.tensor(list(raw[8:]), dtype=torch.long)
    return images, labels


def generator(inputs):
    return nn.Sequential(
        nn.Linear(inputs, 256), nn.LeakyReLU(0.2),
        nn.Linear(256, 512), nn.LeakyReLU(0.2),
        nn.Linear(512, 1024), nn.LeakyReLU(0.2),
        nn.Linear(1024, 784), nn.Tanh(),
    )


def discriminator(inputs):
    return nn.Sequential(
        nn.Linear(inputs, 512), nn.LeakyReLU(0.2), nn.Dropout(0.3),
        nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.3),
        nn.Linear(256, 1),
    )


def lenet():
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


# The condition is the one-hot class times 5: at 1 it is 10 inputs of D's 794 beside 784 pixels of
# magnitude about 1, and D learnt to use it slowly (see examples/mnist_gan.rs).
CONDITION_SCALE = 5.0


def one_hot(labels):
    return F.one_hot(labels, 10).float() * CONDITION_SCALE


def train_gan(epochs, train, train_labels, conditional):
    condition = 10 if conditional else 0
    g, d = generator(64 + condition), discriminator(784 + condition)
    g_opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    name = "conditional GAN" if conditional else "GAN"
    start = time.time()
    for epoch in range(epochs):
        order = torch.randperm(len(train))
        d_total, g_total, rounds = 0.0, 0.0, 0
        for i in range(0, len(train), 64):
            real = train[order[i : i + 64]] * 2 - 1
            y = one_hot(train_labels[order[i : i + 64]])
            b = len(real)
            z = torch.randn(b, 64)
            g_in = torch.cat([z, y], 1) if conditional else z
            with torch.no_grad():
                fake = g(g_in)
            d_real = torch.cat([real, y], 1) if conditional else real
            d_fake = torch.cat([fake, y], 1) if conditional else fake
            d_loss = F.binary_cross_entropy_with_logits(d(d_real), torch.ones(b, 1))
            fake_loss = F.binary_cross_entropy_with_logits(d(d_fake), torch.zeros(b, 1))
            if conditional:
                # The matching-aware discriminator (typednet's `mismatched_conditions`): real
                # digits with a wrong class, row i's class k moved to (k + 1 + i mod 9) mod 10.
                labels_now = train_labels[order[i : i + 64]]
                wrong = (labels_now + 1 + torch.arange(b) % 9) % 10
                mismatched = torch.cat([real, one_hot(wrong)], 1)
                d_loss = d_loss + 0.5 * fake_loss + 0.5 * F.binary_cross_entropy_with_logits(
                    d(mismatched), torch.zeros(b, 1))
            else:
                d_loss = d_loss + fake_loss
            d_opt.zero_grad()
            d_loss.backward()
            d_opt.step()
            z = torch.randn(b, 64)
            g_in = torch.cat([z, y], 1) if conditional else z
            fake = g(g_in)
            scored = torch.cat([fake, y], 1) if conditional else fake
            g_loss = F.binary_cross_entropy_with_logits(d(scored), torch.ones(b, 1))
            g_opt.zero_grad()
            g_loss.backward()
            g_opt.step()
            d_total, g_total, rounds = d_total + d_loss.item(), g_total + g_loss.item(), rounds + 1
        if epoch == 0 or (epoch + 1) % 5 == 0 or epoch + 1 == epochs:
            print(f"{name} epoch {epoch + 1}/{epochs}: D loss {d_total / rounds:.3f}, "
                  f"G loss {g_total / rounds:.3f} ({time.time() - start:.0f} s so far)")
    return g


def score(probabilities):
    marginal = probabilities.mean(0, keepdim=True)
    kl = (probabilities * (probabilities.clamp_min(1e-30).log() - marginal.log())).sum(1)
    return kl.mean().exp().item()


def run(epochs, seed, images, labels):
    torch.manual_seed(seed)
    train, train_labels = images[:8000], labels[:8000]
    test, test_labels = images[8000:], labels[8000:]
    g = train_gan(epochs, train, train_labels, conditional=False)
    cg = train_gan(epochs, train, train_labels, conditional=True)

    judge = lenet()
    opt = torch.optim.Adam(judge.parameters(), lr=1e-3)
    for _ in range(10):
        order = torch.randperm(len(train))
        for i in range(0, len(train), 64):
            idx = order[i : i + 64]
            loss = F.cross_entropy(judge(train[idx]), train_labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        accuracy = (judge(test).argmax(1) == test_labels).float().mean().item()
        print(f"seed {seed}: LeNet-5 judge {100 * accuracy:.2f}% on the real test digits")
        sources = {
            "real test digits": test,
            "GAN samples": (g(torch.randn(2000, 64)) + 1) / 2,
            "uniform noise": torch.rand(2000, 784),
        }
        for name, x in sources.items():
            print(f"seed {seed}: classifier score of {name}: {score(F.softmax(judge(x), 1)):.2f}")
        requested = torch.arange(10).repeat_interleave(100)
        drawn = (cg(torch.cat([torch.randn(1000, 64), one_hot(requested)], 1)) + 1) / 2
        probabilities = F.softmax(judge(drawn), 1)
        right = (probabilities.argmax(1) == requested).float()
        per_class = ", ".join(f"{k}: {100 * right[requested == k].mean():.0f}%" for k in range(10))
        print(f"seed {seed}: conditional GAN: {100 * right.mean():.1f}% classified as the digit asked for "
              f"({per_class}); classifier score {score(probabilities):.2f}")


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    seeds = [int(s) for s in sys.argv[2:]] or [0]
    images, labels = load()
    for seed in seeds:
        run(epochs, seed, images, labels)
