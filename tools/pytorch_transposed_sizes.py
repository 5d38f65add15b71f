"""Output sizes of torch.nn.ConvTranspose2d for the cases in arith/src/lib.rs
(`transposed_output_follows_pytorch`), and the cases PyTorch rejects.

Run: /tmp/ref/bin/python tools/pytorch_transposed_sizes.py
"""
import torch

CASES = [(7, 4, 2, 1, 0), (4, 3, 2, 1, 1), (5, 3, 1, 0, 0), (1, 4, 1, 0, 0), (3, 5, 3, 2, 2), (1, 3, 2, 2, 0)]
for w, k, s, p, q in CASES:
    try:
        layer = torch.nn.ConvTranspose2d(1, 1, k, s, p, q)
        out = layer(torch.zeros(1, 1, w, w)).shape[-1]
        print(f"({w}, {k}, {s}, {p}, {q}, {out}),")
    except RuntimeError as error:
        print(f"({w}, {k}, {s}, {p}, {q}) rejected: {str(error).splitlines()[0]}")
