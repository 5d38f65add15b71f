"""Reference values for `tests/dilated_conv.rs`: PyTorch 2.15's `F.conv2d(..., dilation=d)` on
three geometries, forward values and the gradients of `Σ y ⊙ g` with respect to the input, the
weight and the bias. Writes `tests/fixtures/dilated_conv2d.txt`, one `name v v v …` line per
array (`{case}.x`, `.weight`, `.bias`, `.g`, `.y`, `.grad_x`, `.grad_weight`, `.grad_bias`, and
the geometry as `.sizes`: batch c_in h w c_out k_h k_w, `.stride`, `.padding`, `.dilation`); inputs
rounded to 4 decimals, float64.

Run: /tmp/ref/bin/python tools/reference_dilated_conv.py
"""
from pathlib import Path

import torch
import torch.nn.functional as F

torch.manual_seed(0)
lines = [f"# tools/reference_dilated_conv.py, torch {torch.__version__}"]


def put(name, values):
    if isinstance(values, torch.Tensor):
        values = values.detach().double().flatten().tolist()
    lines.append(name + " " + " ".join(repr(float(v)) for v in values))


def rounded(*shape):
    return torch.round(torch.randn(*shape, dtype=torch.float64), decimals=4)


# name: (batch, c_in, (h, w), c_out, (k_h, k_w), stride, padding, dilation)
CASES = {
    # 3×3 taps 2 apart span 5×5: 7×7 → 3×3.
    "dilation2": (2, 2, (7, 7), 3, (3, 3), (1, 1), (0, 0), (2, 2)),
    # Dilation (2, 3) spans 5×7; stride 2, padding 1 on 9×11: 4×4.
    "dilation2x3_stride2_pad1": (2, 2, (9, 11), 3, (3, 3), (2, 2), (1, 1), (2, 3)),
    # `pad = same` with dilation 2: the 5×5 extent pads 2 each side, 6×5 kept.
    "dilation2_same": (2, 2, (6, 5), 3, (3, 3), (1, 1), "same", (2, 2)),
}

for name, (batch, c_in, (h, w), c_out, (k_h, k_w), stride, padding, dilation) in CASES.items():
    x = rounded(batch, c_in, h, w).requires_grad_(True)
    weight = (rounded(c_out, c_in, k_h, k_w) * 0.5).requires_grad_(True)
    bias = (rounded(c_out) * 0.5).requires_grad_(True)
    y = F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
    if padding == "same":
        padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, (k_h, k_w)))
    g = rounded(*y.shape)
    (y * g).sum().backward()
    put(f"{name}.sizes", [batch, c_in, h, w, c_out, k_h, k_w])
    put(f"{name}.stride", stride)
    put(f"{name}.padding", padding)
    put(f"{name}.dilation", dilation)
    put(f"{name}.out_shape", y.shape)
    put(f"{name}.x", x)
    put(f"{name}.weight", weight)
    put(f"{name}.bias", bias)
    put(f"{name}.g", g)
    put(f"{name}.y", y)
    put(f"{name}.grad_x", x.grad)
    put(f"{name}.grad_weight", weight.grad)
    put(f"{name}.grad_bias", bias.grad)

out = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "dilated_conv2d.txt"
out.write_text("\n".join(lines) + "\n")
print(f"wrote {out}")
