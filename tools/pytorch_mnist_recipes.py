"""The main jobs' recipes in PyTorch 2.15, on the same shipped digits: what typednet's accuracy
should match. First 8,000 digits to train, last 2,000 to test, pixels scaled to [0, 1],
10 epochs, batch 64 (shuffled), Adam 1e-3, PyTorch's default initialisation.

The `lstm` recipe reads each digit row by row: 28 steps of 28 pixels, `nn.LSTM(28, 128)`, and
a linear layer on the last hidden state.

Run: /tmp/ref/bin/python tools/pytorch_mnist_recipes.py [mlp|lenet|lstm] [seeds...]
(`DEVICE=cuda` runs it on the GPU, as the examples do when built with `--features cuda`;
`STANDARDIZE=1` standardises the pixels with the training digits' mean and standard deviation,
as `examples/mnist_lenet.rs` and `examples/mnist_lstm.rs` do.)
"""
import gzip
import os
import struct
import sys
import time
from pathlib import Path

import torch
from torch import nn

DATA = Path(__file__).resolve().parent.parent / "data"
DEVICE = torch.device(os.environ.get("DEVICE", "cpu"))


def load():
    raw = gzip.open(DATA / "mnist10k-images-idx3-ubyte.gz").read()
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    assert magic == 0x803
    images = torch.tensor(list(raw[16:]), dtype=torch.float32).reshape(count, 1, rows, cols) / 255
    raw = gzip.open(DATA / "mnist10k-labels-idx1-ubyte.gz").read()
    labels = torch.tensor(list(raw[8:]), dtype=torch.long)
    if os.environ.get("STANDARDIZE"):
        # The training digits' figures (population deviation, as typednet's
        # `Dataset::feature_mean_and_std`), applied to both sets.
        mean, std = images[:8000].mean(), images[:8000].std(correction=0)
        print(f"pixels standardised with mean {mean:.4f} and deviation {std:.4f}")
        images = (images - mean) / std
    return images, labels


class RowLstm(nn.Module):
    """MNIST read row by row: 28 steps of 28 pixels, the last hidden state classified."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(28, 128, batch_first=True)
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        _, (h, _) = self.lstm(x.reshape(-1, 28, 28))
        return self.head(h[-1])


def model(name):
    if name == "lstm":
        return RowLstm()
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def run(name, seed, images, labels):
    torch.manual_seed(seed)
    net = model(name).to(DEVICE)
    images, labels = images.to(DEVICE), labels.to(DEVICE)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x_train, y_train, x_test, y_test = images[:8000], labels[:8000], images[8000:], labels[8000:]
    start = time.time()
    for _ in range(10):
        order = torch.randperm(8000).to(DEVICE)
        for i in range(0, 8000, 64):
            idx = order[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x_train[idx]), y_train[idx]).backward()
            opt.step()
    with torch.no_grad():
        accuracy = (net(x_test).argmax(1) == y_test).float().mean().item()
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
    print(f"pytorch {name} seed {seed}: test accuracy {100 * accuracy:.2f}% ({time.time() - start:.1f} s)")


if __name__ == "__main__":
    torch.set_num_threads(2)
    name = sys.argv[1] if len(sys.argv) > 1 else "lenet"
    seeds = [int(s) for s in sys.argv[2:]] or [0, 1, 2]
    images, labels = load()
    for seed in seeds:
        run(name, seed, images, labels)
