"""Reference values for `tests/locally_connected.rs`: a locally-connected 2-d layer (no weight
sharing; Keras `LocallyConnected2D`) written with PyTorch 2.15's `F.unfold` and one matrix
product per output position, in float64. PyTorch has no such layer, so the script first checks
its own formula: with every position's filters equal, it must give `F.conv2d`.

For each case it stores the input `x`, the weight in typednet's `[O_H, O_W, C_OUT, C_IN, K_H,
K_W]` layout, the bias `[C_OUT, O_H, O_W]`, an upstream gradient `g`, the output `y`, and the
gradients of `Σ y ⊙ g` with respect to `x`, the weight and the bias. Writes
`tests/fixtures/locally_connected2d.txt`, one `name v v v …` line per array; inputs rounded to
4 decimals.

Run: /tmp/ref/bin/python tools/reference_locally_connected.py
"""
from pathlib import Path

import torch
import torch.nn.functional as F

torch.manual_seed(0)
lines = [f"# tools/reference_locally_connected.py, torch {torch.__version__}"]


def put(name, tensor):
    lines.append(name + " " + " ".join(repr(v) for v in tensor.detach().double().flatten().tolist()))


def locally_connected(x, weight, bias, kernel, stride, padding):
    """`weight`: `[O_H, O_W, C_OUT, C_IN, K_H, K_W]`; `bias`: `[C_OUT, O_H, O_W]`."""
    o_h, o_w, c_out = weight.shape[:3]
    positions = o_h * o_w
    cols = F.unfold(x, kernel, padding=padding, stride=stride)  # [B, C_IN·K_H·K_W, L]
    assert cols.shape[2] == positions, (cols.shape, weight.shape)
    y = torch.einsum("bkl,lok->bol", cols, weight.reshape(positions, c_out, -1))
    y = y + bias.reshape(c_out, positions)
    return y.reshape(x.shape[0], c_out, o_h, o_w)


def output_size(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def rounded(*shape, scale=1.0):
    return torch.round(torch.randn(*shape, dtype=torch.float64) * scale, decimals=4)


# name: (batch, C_IN, C_OUT, H, W, kernel, stride, padding)
CASES = {
    "a": (2, 2, 3, 5, 6, (3, 3), (1, 1), (0, 0)),
    "b": (2, 3, 2, 7, 5, (3, 2), (2, 2), (1, 0)),
}

for name, (batch, c_in, c_out, h, w, kernel, stride, padding) in CASES.items():
    o_h = output_size(h, kernel[0], stride[0], padding[0])
    o_w = output_size(w, kernel[1], stride[1], padding[1])

    # Sanity of the formula: shared filters give the convolution.
    x = rounded(batch, c_in, h, w)
    shared = rounded(c_out, c_in, *kernel, scale=0.5)
    shared_bias = rounded(c_out, scale=0.5)
    tiled = shared.expand(o_h, o_w, *shared.shape)
    tiled_bias = shared_bias[:, None, None].expand(c_out, o_h, o_w)
    conv = F.conv2d(x, shared, shared_bias, stride=stride, padding=padding)
    local = locally_connected(x, tiled, tiled_bias, kernel, stride, padding)
    gap = (conv - local).abs().max().item()
    print(f"case {name}: output {o_h}×{o_w}; shared filters vs F.conv2d: max |difference| {gap:.3e}")
    assert gap < 1e-12, gap

    # The fixture: distinct filters at every position.
    weight = rounded(o_h, o_w, c_out, c_in, *kernel, scale=0.5).requires_grad_(True)
    bias = rounded(c_out, o_h, o_w, scale=0.5).requires_grad_(True)
    xg = x.clone().requires_grad_(True)
    y = locally_connected(xg, weight, bias, kernel, stride, padding)
    g = rounded(*y.shape)
    (y * g).sum().backward()
    put(f"{name}.sizes", torch.tensor([batch, c_in, c_out, h, w, *kernel, *stride, *padding, o_h, o_w]))
    put(f"{name}.x", x)
    put(f"{name}.weight", weight)
    put(f"{name}.bias", bias)
    put(f"{name}.g", g)
    put(f"{name}.y", y)
    put(f"{name}.grad_x", xg.grad)
    put(f"{name}.grad_weight", weight.grad)
    put(f"{name}.grad_bias", bias.grad)

out = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "locally_connected2d.txt"
out.write_text("\n".join(lines) + "\n")
print(f"wrote {out}")
