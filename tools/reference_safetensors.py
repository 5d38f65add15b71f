"""Safetensors files written by the reference implementation, for tests/checkpoint.rs.

Run with a throwaway venv holding `safetensors` and `numpy` (safetensors 0.8.0, numpy 2.4.6 for
the committed files):

    python tools/reference_safetensors.py            # writes tests/fixtures/safetensors/*.safetensors
    python tools/reference_safetensors.py check FILE # loads FILE (e.g. one typednet wrote) and prints it

The network the fixture fits is `[4] -> linear(3) -> relu -> linear(2)` (typednet names, PyTorch
layout: weight [out, in]); every value is `0.25 * i - 1` for its flat index i, in float32.
"""
import sys

import numpy as np
from safetensors.numpy import load_file, save_file
from safetensors import safe_open

OUT = "tests/fixtures/safetensors"


def values(*shape):
    return (np.arange(int(np.prod(shape)), dtype=np.float32) * 0.25 - 1).reshape(shape)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        with safe_open(sys.argv[2], "np") as f:
            print("metadata", f.metadata())
        for name, array in load_file(sys.argv[2]).items():
            print(name, array.dtype, list(array.shape), array.ravel()[:4].tolist())
        return
    tensors = {
        "linear1.weight": values(3, 4),
        "linear1.bias": values(3),
        "linear2.weight": values(2, 3),
        "linear2.bias": values(2),
    }
    save_file(tensors, f"{OUT}/tiny_f32.safetensors", metadata={"note": 'é "quoted"\n'})
    half = dict(tensors, **{"linear1.weight": values(3, 4).astype(np.float16)})
    save_file(half, f"{OUT}/tiny_f16_weight.safetensors")


if __name__ == "__main__":
    main()
