"""Reference for `tests/gan.rs` (`ten_gan_rounds_match_pytorch`): a small GAN trained for ten
rounds (one discriminator step, then one generator step) in PyTorch 2.15, from weights, data and
noise that typednet reproduces exactly.

G: 4 -> 8 (leaky ReLU 0.2) -> 6 (sigmoid); D: 6 -> 8 (leaky ReLU 0.2) -> 1 (a logit). Adam 1e-2,
betas (0.5, 0.999) for both. D's loss: BCE with logits against 1 on the real batch plus against 0
on G's samples (two means, summed); G's loss: the non-saturating BCE(D(G(z)), 1). Every number
comes from the 64-bit LCG below, as in `reference_lenet_steps.py`: parameters (2u - 1)/sqrt(fan_in)
in network order, each round's real batch (5 rows of u), D's noise then G's noise (5 rows of
2u - 1 each). Writes `tests/fixtures/gan_steps.txt`: D's and G's loss at each round, then the sum
and the sum of absolute values of every parameter after the last round.

Run: /tmp/ref/bin/python tools/reference_gan_steps.py
"""
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROUNDS = 10
BATCH = 5
MASK = (1 << 64) - 1
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "gan_steps.txt"


class Lcg:
    """Knuth's MMIX LCG; `uniform` keeps the top 24 bits, exact in f32 and f64."""

    def __init__(self, seed):
        self.state = seed

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & MASK
        return self.state

    def uniform(self):
        return (self.next() >> 40) / float(1 << 24)

    def rows(self, n, width, signed):
        values = [self.uniform() for _ in range(n * width)]
        if signed:
            values = [2.0 * v - 1.0 for v in values]
        return torch.tensor(values, dtype=torch.float64).reshape(n, width).float()


def fill(net, rng, prefix):
    names = []
    with torch.no_grad():
        linears = [m for m in net if isinstance(m, nn.Linear)]
        for i, module in enumerate(linears):
            bound = 1.0 / module.in_features ** 0.5
            for kind in ("weight", "bias"):
                p = getattr(module, kind)
                values = [(2.0 * rng.uniform() - 1.0) * bound for _ in range(p.numel())]
                p.copy_(torch.tensor(values, dtype=torch.float64).reshape(p.shape).float())
                names.append((f"{prefix}.linear{i + 1}.{kind}", p))
    return names


def main():
    torch.set_num_threads(1)
    rng = Lcg(2026)
    g = nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(0.2), nn.Linear(8, 6), nn.Sigmoid())
    d = nn.Sequential(nn.Linear(6, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    parameters = fill(g, rng, "generator") + fill(d, rng, "discriminator")
    g_opt = torch.optim.Adam(g.parameters(), lr=1e-2, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(d.parameters(), lr=1e-2, betas=(0.5, 0.999))
    lines = ["# tools/reference_gan_steps.py (PyTorch 2.15)"]
    for _ in range(ROUNDS):
        real = rng.rows(BATCH, 6, signed=False)
        d_noise = rng.rows(BATCH, 4, signed=True)
        g_noise = rng.rows(BATCH, 4, signed=True)
        with torch.no_grad():
            fake = g(d_noise)
        d_loss = F.binary_cross_entropy_with_logits(d(real), torch.ones(BATCH, 1)) + \
            F.binary_cross_entropy_with_logits(d(fake), torch.zeros(BATCH, 1))
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        g_loss = F.binary_cross_entropy_with_logits(d(g(g_noise)), torch.ones(BATCH, 1))
        g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()
        lines.append(f"round {d_loss.item():.9e} {g_loss.item():.9e}")
    for name, p in parameters:
        p = p.detach().double()
        lines.append(f"{name} {p.sum().item():.9e} {p.abs().sum().item():.9e}")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
