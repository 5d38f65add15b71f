"""Reference values for `tests/padded_pool.rs`: PyTorch 2.15's padded pooling, as ResNet's stem
(`MaxPool2d(3, stride=2, padding=1)`) and Inception's pool branch (`MaxPool2d(3, stride=1,
padding=1)`) use it, and `AvgPool2d(3, stride=1, padding=1)` (`count_include_pad=True`, the
default). Forward values and the input gradient of `Σ y ⊙ g`. Writes
`tests/fixtures/padded_pool.txt`, one `name v v v …` line per array; inputs have distinct values
(no ties), rounded to 4 decimals.

Run: /tmp/ref/bin/python tools/reference_padded_pool.py
"""
from pathlib import Path

import torch
import torch.nn.functional as F

torch.manual_seed(0)
lines = [f"# tools/reference_padded_pool.py, torch {torch.__version__}"]


def put(name, tensor):
    lines.append(name + " " + " ".join(repr(v) for v in tensor.detach().double().flatten().tolist()))


# 2 × 3 × 7 × 6: odd height, even width, so the stride-2 windows meet both borders differently.
x = torch.round(torch.randn(2, 3, 7, 6, dtype=torch.float64) * 2, decimals=4)
assert x.flatten().unique().numel() == x.numel()
put("x", x)
cases = {
    "max_s2": lambda t: F.max_pool2d(t, 3, stride=2, padding=1),
    "max_s1": lambda t: F.max_pool2d(t, 3, stride=1, padding=1),
    "avg_s1": lambda t: F.avg_pool2d(t, 3, stride=1, padding=1),
}
for name, pool in cases.items():
    xg = x.clone().requires_grad_(True)
    y = pool(xg)
    g = torch.round(torch.randn(y.shape, dtype=torch.float64), decimals=4)
    (y * g).sum().backward()
    put(f"{name}.g", g)
    put(f"{name}.y", y)
    put(f"{name}.grad_x", xg.grad)
out = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "padded_pool.txt"
out.write_text("\n".join(lines) + "\n")
print(f"wrote {out}")
