"""Reference values for `tests/batch_norm.rs` from PyTorch 2.15's `nn.BatchNorm2d` and
`nn.BatchNorm1d`: training-mode output, gradients of input, weight (γ) and bias (β) for the loss
`Σ y ⊙ g`, the running statistics after that one step (momentum 0.1), and the eval-mode output
with the updated statistics. Writes `tests/fixtures/batch_norm.txt`, one `name v v v …` line per
array (row-major), inputs rounded to 4 decimals so both sides see the same numbers.

Run: /tmp/ref/bin/python tools/reference_batch_norm.py
"""
from pathlib import Path

import torch
from torch import nn

torch.manual_seed(0)
lines = [f"# tools/reference_batch_norm.py, torch {torch.__version__}"]


def put(name, tensor):
    values = tensor.detach().double().flatten().tolist()
    lines.append(name + " " + " ".join(repr(v) for v in values))


def rounded(*shape):
    return torch.round(torch.randn(*shape, dtype=torch.float64) * 1.5 + 0.3, decimals=4)


def case(prefix, layer, x_shape, channels):
    layer = layer.double()
    with torch.no_grad():
        layer.weight.copy_(rounded(channels))
        layer.bias.copy_(rounded(channels))
        layer.running_mean.copy_(rounded(channels))
        layer.running_var.copy_(rounded(channels).abs() + 0.5)
    x = rounded(*x_shape).requires_grad_(True)
    g = rounded(*x_shape)
    for name, t in [("x", x), ("g", g), ("weight", layer.weight), ("bias", layer.bias),
                    ("running_mean", layer.running_mean), ("running_var", layer.running_var)]:
        put(f"{prefix}.{name}", t)
    layer.train()
    y = layer(x)
    (y * g).sum().backward()
    put(f"{prefix}.train_out", y)
    put(f"{prefix}.grad_x", x.grad)
    put(f"{prefix}.grad_weight", layer.weight.grad)
    put(f"{prefix}.grad_bias", layer.bias.grad)
    put(f"{prefix}.running_mean_after", layer.running_mean)
    put(f"{prefix}.running_var_after", layer.running_var)
    layer.eval()
    with torch.no_grad():
        put(f"{prefix}.eval_out", layer(x))


case("bn2d", nn.BatchNorm2d(3), (2, 3, 4, 5), 3)
case("bn1d", nn.BatchNorm1d(4), (5, 4), 4)
out = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "batch_norm.txt"
out.write_text("\n".join(lines) + "\n")
print(f"wrote {out}")
