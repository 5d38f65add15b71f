"""Reference values for `tests/lrn.rs`: PyTorch 2.15's `F.local_response_norm` (size 5 and 3),
forward values and the input gradient of `Σ y ⊙ g`. Writes `tests/fixtures/lrn.txt`, one
`name v v v …` line per array; inputs rounded to 4 decimals.

Run: /tmp/ref/bin/python tools/reference_lrn.py
"""
from pathlib import Path

import torch
import torch.nn.functional as F

torch.manual_seed(0)
lines = [f"# tools/reference_lrn.py, torch {torch.__version__}"]


def put(name, tensor):
    lines.append(name + " " + " ".join(repr(v) for v in tensor.detach().double().flatten().tolist()))


x = torch.round(torch.randn(2, 7, 3, 4, dtype=torch.float64) * 2, decimals=4)
put("x", x)
for name, (size, alpha, beta, k) in {"n5": (5, 0.5, 0.75, 2.0), "n3": (3, 1e-4, 0.75, 1.0)}.items():
    xg = x.clone().requires_grad_(True)
    y = F.local_response_norm(xg, size, alpha=alpha, beta=beta, k=k)
    g = torch.round(torch.randn(y.shape, dtype=torch.float64), decimals=4)
    (y * g).sum().backward()
    put(f"{name}.g", g)
    put(f"{name}.y", y)
    put(f"{name}.grad_x", xg.grad)
out = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "lrn.txt"
out.write_text("\n".join(lines) + "\n")
print(f"wrote {out}")
