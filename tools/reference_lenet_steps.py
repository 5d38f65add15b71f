"""Reference for `tests/lenet_pytorch.rs`: LeNet-5 trained for a few Adam steps in PyTorch 2.15
from weights and batches that typednet can reproduce exactly.

Both sides draw the initial weights and the batches from the same 64-bit LCG (below), so no
weights need to be shipped: each parameter, in the order of the network, is filled with
`(2u − 1)/√fan_in`, PyTorch's default bound, `u` a 24-bit uniform. The batches are rows of the
shipped MNIST digits (`data/`, pixels / 255). Writes `tests/fixtures/lenet_steps.txt`:
the loss before each step, then the sum and the sum of absolute values of every parameter
after the last step.

Run: /tmp/ref/bin/python tools/reference_lenet_steps.py
"""
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pytorch_mnist_recipes import load  # noqa: E402

STEPS = 30
BATCH = 16
MASK = (1 << 64) - 1


class Lcg:
    """Knuth's MMIX LCG; `uniform` keeps the top 24 bits, exact in f32 and f64."""

    def __init__(self, seed):
        self.state = seed

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & MASK
        return self.state

    def uniform(self):
        return (self.next() >> 40) / float(1 << 24)

    def index(self, n):
        return (self.next() >> 33) % n


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def main():
    torch.set_num_threads(1)
    images, labels = load()
    net = lenet()
    rng = Lcg(2026)
    # typednet's names for the layers with parameters, in order.
    layer_names = iter(["conv1", "conv2", "linear1", "linear2", "linear3"])
    names = []
    with torch.no_grad():
        for module in net.children():
            if not hasattr(module, "weight"):
                continue
            name = next(layer_names)
            fan_in = module.weight[0].numel()
            bound = 1.0 / fan_in ** 0.5
            for kind in ("weight", "bias"):
                p = getattr(module, kind)
                values = [(2.0 * rng.uniform() - 1.0) * bound for _ in range(p.numel())]
                p.copy_(torch.tensor(values, dtype=torch.float64).reshape(p.shape).float())
                names.append(f"{name}.{kind}")
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(STEPS):
        idx = torch.tensor([rng.index(8000) for _ in range(BATCH)])
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(images[idx]), labels[idx])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    out = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "lenet_steps.txt"
    with open(out, "w") as f:
        f.write(f"# tools/reference_lenet_steps.py, torch {torch.__version__}: {STEPS} Adam steps, batch {BATCH}\n")
        f.write("losses " + " ".join(repr(v) for v in losses) + "\n")
        for name, p in zip(names, net.parameters()):
            p = p.detach().double()
            f.write(f"{name} {p.sum().item()!r} {p.abs().sum().item()!r}\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
