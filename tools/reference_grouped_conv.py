"""Reference values for `tests/grouped_conv.rs`: PyTorch 2.15's `F.conv2d(..., groups=G)` on
three geometries, forward values and the gradients of `Σ y ⊙ g` with respect to the input, the
weight and the bias. Writes `tests/fixtures/grouped_conv2d.txt`, one `name v v v …` line per
array (`{case}.x`, `.weight`, `.bias`, `.g`, `.y`, `.grad_x`, `.grad_weight`, `.grad_bias`, and
the geometry as `.sizes`: batch c_in h w c_out groups k_h k_w, `.stride`, `.padding`); inputs
rounded to 4 decimals, float64.

Run: /tmp/ref/bin/python tools/reference_grouped_conv.py
"""
from pathlib import Path

import torch
import torch.nn.functional as F

torch.manual_seed(0)
lines = [f"# tools/reference_grouped_conv.py, torch {torch.__version__}"]


def put(name, values):
    if isinstance(values, torch.Tensor):
        values = values.detach().double().flatten().tolist()
    lines.append(name + " " + " ".join(repr(float(v)) for v in values))


def rounded(*shape):
    return torch.round(torch.randn(*shape, dtype=torch.float64), decimals=4)


# name: (batch, c_in, (h, w), c_out, groups, (k_h, k_w), stride, padding)
CASES = {
    # Two groups: 4 → 6 channels, 3×3, padding 1 keeps 5×6.
    "groups2": (2, 4, (5, 6), 6, 2, (3, 3), (1, 1), (1, 1)),
    # Depthwise, channel multiplier 2: groups = C_IN = 3, 3×2 kernel, stride 2, padding (1, 0).
    "depthwise": (2, 3, (7, 5), 6, 3, (3, 2), (2, 2), (1, 0)),
    # Three groups, stride 2, a 3×3 window that does not tile 8×10 (the last row and column
    # are in no window).
    "groups3_stride2": (2, 6, (8, 10), 9, 3, (3, 3), (2, 2), (0, 0)),
}

for name, (batch, c_in, (h, w), c_out, groups, (k_h, k_w), stride, padding) in CASES.items():
    x = rounded(batch, c_in, h, w).requires_grad_(True)
    weight = (rounded(c_out, c_in // groups, k_h, k_w) * 0.5).requires_grad_(True)
    bias = (rounded(c_out) * 0.5).requires_grad_(True)
    y = F.conv2d(x, weight, bias, stride=stride, padding=padding, groups=groups)
    g = rounded(*y.shape)
    (y * g).sum().backward()
    put(f"{name}.sizes", [batch, c_in, h, w, c_out, groups, k_h, k_w])
    put(f"{name}.stride", stride)
    put(f"{name}.padding", padding)
    put(f"{name}.out_shape", y.shape)
    put(f"{name}.x", x)
    put(f"{name}.weight", weight)
    put(f"{name}.bias", bias)
    put(f"{name}.g", g)
    put(f"{name}.y", y)
    put(f"{name}.grad_x", x.grad)
    put(f"{name}.grad_weight", weight.grad)
    put(f"{name}.grad_bias", bias.grad)

out = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "grouped_conv2d.txt"
out.write_text("\n".join(lines) + "\n")
print(f"wrote {out}")
