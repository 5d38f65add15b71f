"""Reference values for `tests/recurrent_cells.rs`: the seven recurrent cells of
`src/recurrent/`, run over a sequence in PyTorch 2.15 (float64), with the gradients of

    L = Σ out ⊙ g_out + Σ h_T ⊙ g_h  (+ Σ c_T ⊙ g_c for the LSTMs)

with respect to the input, the initial state and every parameter. Writes
`tests/fixtures/recurrent.txt`, one `name v v v …` line per array; inputs rounded to 4 decimals.

Cells 1, 3, 6 (Elman, LSTM, PyTorch's GRU) are run with `nn.RNN`, `nn.LSTM`, `nn.GRU` (the
weights copied in); the script checks that its own implementation of their formulas in PyTorch
ops agrees. Cells 2, 4, 5, 7 (LSTM without forget gate, peephole LSTM, the lecture notes' GRU,
the minimal gated unit) have no PyTorch module and are written here from their formulas, so this
file is their reference. Also a 2-layer stacked LSTM (`num_layers=2`) and a bidirectional GRU
(`bidirectional=True`).

Weights are stored as PyTorch lays them out, gates stacked on the first axis: `weight_ih` is
`[G·H, I]` (`[G, H, I]` in Rust, the same memory), `bias_ih` `[G·H]`.

Run: /tmp/ref/bin/python tools/reference_recurrent.py
"""
from pathlib import Path

import torch
from torch import nn

torch.manual_seed(6)
torch.set_default_dtype(torch.float64)
B, T, I, H = 2, 4, 3, 5
lines = [f"# tools/reference_recurrent.py, torch {torch.__version__}; B={B} T={T} I={I} H={H}"]


def put(name, tensor):
    lines.append(name + " " + " ".join(repr(v) for v in tensor.detach().double().flatten().tolist()))


def rand(*shape, scale=1.0):
    return torch.round(torch.randn(*shape) * scale, decimals=4)


def sig(v):
    return torch.sigmoid(v)


def gates(x, h, p, count):
    """x·W_ihᵀ + b_ih and h·W_hhᵀ + b_hh, each split into `count` gates of H features."""
    gi = (x @ p["weight_ih"].T + p["bias_ih"]).chunk(count, dim=1)
    gh = (h @ p["weight_hh"].T + p["bias_hh"]).chunk(count, dim=1)
    return gi, gh


def w_hh(p, gate):
    return p["weight_hh"][gate * H:(gate + 1) * H], p["bias_hh"][gate * H:(gate + 1) * H]


# One step of each cell: (x_t, state, params) -> state. A state is (h,) or (h, c).
def elman(x, s, p):
    (h,) = s
    return (torch.tanh(x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]),)


def lstm_no_forget(x, s, p):
    h, c = s
    (ii, gi, oi), (ih, gh, oh) = gates(x, h, p, 3)
    i, g, o = sig(ii + ih), torch.tanh(gi + gh), sig(oi + oh)
    c = c + i * g
    return o * torch.tanh(c), c


def lstm(x, s, p):
    h, c = s
    (ii, fi, gi, oi), (ih, fh, gh, oh) = gates(x, h, p, 4)
    i, f, g, o = sig(ii + ih), sig(fi + fh), torch.tanh(gi + gh), sig(oi + oh)
    c = f * c + i * g
    return o * torch.tanh(c), c


def peephole_lstm(x, s, p):
    h, c_prev = s
    pi, pf, po = p["weight_peephole"]
    (ii, fi, gi, oi), (ih, fh, gh, oh) = gates(x, h, p, 4)
    i = sig(ii + ih + pi * c_prev)
    f = sig(fi + fh + pf * c_prev)
    g = torch.tanh(gi + gh)
    c = f * c_prev + i * g
    o = sig(oi + oh + po * c)
    return o * torch.tanh(c), c


def gru_notes(x, s, p):
    (h,) = s
    (ri, zi, ni), (rh, zh, _) = gates(x, h, p, 3)
    r, z = sig(ri + rh), sig(zi + zh)
    w, b = w_hh(p, 2)
    n = torch.tanh(ni + (r * h) @ w.T + b)
    return ((1 - z) * h + z * n,)


def gru_torch(x, s, p):
    (h,) = s
    (ri, zi, ni), (rh, zh, nh) = gates(x, h, p, 3)
    r, z = sig(ri + rh), sig(zi + zh)
    n = torch.tanh(ni + r * nh)
    return ((1 - z) * n + z * h,)


def mgu(x, s, p):
    (h,) = s
    (fi, ni), (fh, _) = gates(x, h, p, 2)
    f = sig(fi + fh)
    w, b = w_hh(p, 1)
    n = torch.tanh(ni + (f * h) @ w.T + b)
    return ((1 - f) * h + f * n,)


def run(step, x, state, p, reverse=False):
    """Every h_t ([B, T, H]) and the last state."""
    outs = [None] * T
    for t in (reversed(range(T)) if reverse else range(T)):
        state = step(x[:, t], state, p)
        outs[t] = state[0]
    return torch.stack(outs, dim=1), state


def params(gate_count, inputs, peephole=False):
    p = {
        "weight_ih": rand(gate_count * H, inputs, scale=0.6),
        "weight_hh": rand(gate_count * H, H, scale=0.6),
        "bias_ih": rand(gate_count * H, scale=0.3),
        "bias_hh": rand(gate_count * H, scale=0.3),
    }
    if peephole:
        p["weight_peephole"] = rand(3, H, scale=0.5)
    return {k: v.requires_grad_(True) for k, v in p.items()}


def close(a, b):
    return torch.allclose(a, b, atol=1e-13, rtol=1e-12)


CELLS = {
    # name: (step, gates, has cell state, PyTorch module)
    "elman": (elman, 1, False, nn.RNN),
    "lstm_no_forget": (lstm_no_forget, 3, True, None),
    "lstm": (lstm, 4, True, nn.LSTM),
    "peephole_lstm": (peephole_lstm, 4, True, None),
    "gru_notes": (gru_notes, 3, False, None),
    "gru_torch": (gru_torch, 3, False, nn.GRU),
    "mgu": (mgu, 2, False, None),
}

for name, (step, gate_count, has_c, module) in CELLS.items():
    p = params(gate_count, I, peephole=name == "peephole_lstm")
    x = rand(B, T, I).requires_grad_(True)
    state = [rand(B, H, scale=0.5).requires_grad_(True)]
    if has_c:
        state.append(rand(B, H, scale=0.5).requires_grad_(True))
    g_out, g_h = rand(B, T, H), rand(B, H)
    g_c = rand(B, H) if has_c else None

    out, last = run(step, x, tuple(state), p)
    loss = (out * g_out).sum() + (last[0] * g_h).sum() + ((last[1] * g_c).sum() if has_c else 0)
    leaves = [x, *state, *p.values()]
    grads = torch.autograd.grad(loss, leaves)

    if module is not None:
        # The nn module with the same weights must agree with the formulas, forward and backward.
        m = module(I, H, batch_first=True)
        with torch.no_grad():
            for k, v in p.items():
                getattr(m, k + "_l0").copy_(v)
        xm = x.detach().clone().requires_grad_(True)
        sm = [s.detach().clone().unsqueeze(0).requires_grad_(True) for s in state]
        out_m, last_m = m(xm, tuple(sm) if has_c else sm[0])
        last_m = last_m if has_c else (last_m,)
        loss_m = (out_m * g_out).sum() + (last_m[0][0] * g_h).sum()
        if has_c:
            loss_m = loss_m + (last_m[1][0] * g_c).sum()
        grads_m = torch.autograd.grad(loss_m, [xm, *sm, *(getattr(m, k + "_l0") for k in p)])
        assert close(out, out_m), name
        assert all(close(a, b.reshape(a.shape)) for a, b in zip(grads, grads_m)), name
        print(f"{name}: own formulas agree with nn.{module.__name__}")
        out, grads = out_m, [g.reshape(a.shape) for g, a in zip(grads_m, leaves)]

    put(f"{name}.x", x)
    put(f"{name}.h0", state[0])
    if has_c:
        put(f"{name}.c0", state[1])
    for k, v in p.items():
        put(f"{name}.{k}", v)
    put(f"{name}.g_out", g_out)
    put(f"{name}.g_h", g_h)
    if has_c:
        put(f"{name}.g_c", g_c)
    put(f"{name}.out", out)
    put(f"{name}.h_last", last[0])
    if has_c:
        put(f"{name}.c_last", last[1])
    names = ["x", "h0"] + (["c0"] if has_c else []) + list(p)
    for n, g in zip(names, grads):
        put(f"{name}.grad_{n}", g)

# A 2-layer stacked LSTM: nn.LSTM(num_layers=2) against two of our runs in a row.
m = nn.LSTM(I, H, num_layers=2, batch_first=True)
with torch.no_grad():
    for v in m.parameters():
        v.copy_(rand(*v.shape, scale=0.6))
x = rand(B, T, I).requires_grad_(True)
h0, c0 = rand(2, B, H, scale=0.5).requires_grad_(True), rand(2, B, H, scale=0.5).requires_grad_(True)
g_out, g_h, g_c = rand(B, T, H), rand(2, B, H), rand(2, B, H)
out, (hn, cn) = m(x, (h0, c0))
loss = (out * g_out).sum() + (hn * g_h).sum() + (cn * g_c).sum()
names = [n for n, _ in m.named_parameters()]
grads = torch.autograd.grad(loss, [x, h0, c0, *m.parameters()])
pl = [{k: getattr(m, f"{k}_l{layer}") for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")} for layer in (0, 1)]
o0, s0 = run(lstm, x, (h0[0], c0[0]), pl[0])
o1, s1 = run(lstm, o0, (h0[1], c0[1]), pl[1])
assert close(o1, out) and close(s0[0], hn[0]) and close(s1[1], cn[1])
print("stacked LSTM: two runs in a row agree with nn.LSTM(num_layers=2)")
for n, v in [("x", x), ("h0", h0), ("c0", c0), ("g_out", g_out), ("g_h", g_h), ("g_c", g_c),
             ("out", out), ("h_last", hn), ("c_last", cn)]:
    put(f"stacked_lstm.{n}", v)
for n, v in m.named_parameters():
    put(f"stacked_lstm.{n}", v)
for n, g in zip(["x", "h0", "c0"] + names, grads):
    put(f"stacked_lstm.grad_{n}", g)

# A bidirectional GRU: nn.GRU(bidirectional=True) against a forward and a reversed run.
m = nn.GRU(I, H, bidirectional=True, batch_first=True)
with torch.no_grad():
    for v in m.parameters():
        v.copy_(rand(*v.shape, scale=0.6))
x = rand(B, T, I).requires_grad_(True)
h0 = rand(2, B, H, scale=0.5).requires_grad_(True)
g_out, g_h = rand(B, T, 2 * H), rand(2, B, H)
out, hn = m(x, h0)
loss = (out * g_out).sum() + (hn * g_h).sum()
names = [n for n, _ in m.named_parameters()]
grads = torch.autograd.grad(loss, [x, h0, *m.parameters()])
keys = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
of, sf = run(gru_torch, x, (h0[0],), {k: getattr(m, f"{k}_l0") for k in keys})
ob, sb = run(gru_torch, x, (h0[1],), {k: getattr(m, f"{k}_l0_reverse") for k in keys}, reverse=True)
assert close(torch.cat([of, ob], dim=2), out) and close(sf[0], hn[0]) and close(sb[0], hn[1])
print("bidirectional GRU: forward and reversed runs agree with nn.GRU(bidirectional=True)")
for n, v in [("x", x), ("h0", h0), ("g_out", g_out), ("g_h", g_h), ("out", out), ("h_last", hn)]:
    put(f"bi_gru.{n}", v)
for n, v in m.named_parameters():
    put(f"bi_gru.{n}", v)
for n, g in zip(["x", "h0"] + names, grads):
    put(f"bi_gru.grad_{n}", g)

out_path = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "recurrent.txt"
out_path.write_text("\n".join(lines) + "\n")
print(f"wrote {out_path}")
