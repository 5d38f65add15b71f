#!/usr/bin/env python3
"""Writes tests/fixtures/pytorch_output_sizes.csv: output sizes of real torch.nn layers.

Every row comes from running a torch.nn.Conv2d, MaxPool2d or AvgPool2d on a zero tensor and
reading the shape of its output, so the table records what PyTorch does, not what a formula
says it should do. Configurations PyTorch rejects (a kernel larger than the padded input) are
left out; they are counted on stderr.

The grid mixes well-known layers (AlexNet, LeNet, VGG, ResNet) with a deterministic random
sample of non-square inputs, kernels, strides and paddings. Pooling rows have no padding,
as typednet's pooling layers have none.

Run from the repository root with any Python that has torch (numpy is not needed):

    python tools/pytorch_output_sizes.py

The tests that read the table: tests/shape_table.rs (typednet::shape) and the unit tests at
the end of macros/src/arith.rs (the network! macro's arithmetic).
"""

import pathlib
import random
import sys

import torch

HEADER = "op,in_h,in_w,kernel_h,kernel_w,stride_h,stride_w,pad_h,pad_w,out_h,out_w"
OUTPUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "pytorch_output_sizes.csv"

# (op, (in_h, in_w), (kernel_h, kernel_w), (stride_h, stride_w), (pad_h, pad_w))
WELL_KNOWN = [
    ("conv", (227, 227), (11, 11), (4, 4), (0, 0)),  # AlexNet conv1 -> 55
    ("conv", (224, 224), (11, 11), (4, 4), (2, 2)),  # torchvision's AlexNet conv1 -> 55
    ("conv", (224, 224), (11, 11), (4, 4), (0, 0)),  # the paper's 224: does not tile -> 54
    ("maxpool", (55, 55), (3, 3), (2, 2), (0, 0)),  # AlexNet overlapping pool -> 27
    ("conv", (27, 27), (5, 5), (1, 1), (2, 2)),  # AlexNet conv2 -> 27
    ("conv", (28, 28), (5, 5), (1, 1), (2, 2)),  # LeNet conv1 with padding -> 28
    ("conv", (32, 32), (5, 5), (1, 1), (0, 0)),  # LeNet-5 conv1 -> 28
    ("maxpool", (28, 28), (2, 2), (2, 2), (0, 0)),  # LeNet pool -> 14
    ("avgpool", (28, 28), (2, 2), (2, 2), (0, 0)),
    ("conv", (14, 14), (5, 5), (1, 1), (0, 0)),  # LeNet conv2 -> 10
    ("maxpool", (14, 14), (2, 2), (2, 2), (0, 0)),  # -> 7
    ("avgpool", (14, 14), (2, 2), (2, 2), (0, 0)),
    ("conv", (224, 224), (3, 3), (1, 1), (1, 1)),  # VGG -> 224
    ("maxpool", (224, 224), (2, 2), (2, 2), (0, 0)),  # VGG pool -> 112
    ("conv", (224, 224), (7, 7), (2, 2), (3, 3)),  # ResNet stem -> 112
    ("maxpool", (7, 7), (7, 7), (1, 1), (0, 0)),  # global pool over 7x7 -> 1
    ("conv", (32, 20), (5, 3), (2, 1), (1, 0)),  # non-square everything -> (15, 18)
    ("maxpool", (24, 15), (3, 2), (2, 3), (0, 0)),  # non-square pool -> (11, 5)
    ("conv", (299, 299), (3, 3), (2, 2), (0, 0)),  # Inception stem -> 149
    ("conv", (1, 1), (1, 1), (1, 1), (0, 0)),
    ("conv", (1, 1), (3, 3), (1, 1), (1, 1)),  # padding makes room for the kernel
    ("conv", (5, 5), (5, 5), (3, 3), (0, 0)),  # one window covering the whole input
]

SIZES = list(range(1, 41)) + [47, 55, 56, 64, 100, 112, 224, 227]
RANDOM_ROWS = {"conv": 260, "maxpool": 90, "avgpool": 90}


def layer(op, kernel, stride, padding):
    if op == "conv":
        return torch.nn.Conv2d(1, 1, kernel, stride=stride, padding=padding)
    if op == "maxpool":
        return torch.nn.MaxPool2d(kernel, stride=stride, padding=padding)
    if op == "avgpool":
        return torch.nn.AvgPool2d(kernel, stride=stride, padding=padding)
    raise ValueError(op)


def output_size(op, size, kernel, stride, padding):
    """The (height, width) PyTorch produces, or None where it rejects the configuration."""
    try:
        with torch.no_grad():
            out = layer(op, kernel, stride, padding)(torch.zeros(1, 1, *size))
    except RuntimeError:
        return None
    return tuple(out.shape[2:])


def random_config(rng, op):
    size = (rng.choice(SIZES), rng.choice(SIZES))
    side = rng.randint(1, 11)
    # Half the kernels square, half not.
    kernel = (side, side) if rng.random() < 0.5 else (side, rng.randint(1, 11))
    stride = (rng.randint(1, 5), rng.randint(1, 5))
    if op == "conv":
        padding = (rng.randint(0, 3), rng.randint(0, 3))
    else:
        padding = (0, 0)
    return op, size, kernel, stride, padding


def main():
    rng = random.Random(20240611)
    configs = list(WELL_KNOWN)
    rows, seen, rejected = [], set(), 0
    wanted = dict(RANDOM_ROWS)

    def record(config):
        nonlocal rejected
        if config in seen:
            return False
        seen.add(config)
        out = output_size(*config)
        if out is None:
            rejected += 1
            return False
        op, size, kernel, stride, padding = config
        rows.append((op, *size, *kernel, *stride, *padding, *out))
        return True

    for config in configs:
        if not record(config):
            sys.exit(f"well-known configuration rejected by PyTorch: {config}")
    for op in ("conv", "maxpool", "avgpool"):
        while wanted[op] > 0:
            if record(random_config(rng, op)):
                wanted[op] -= 1

    # Max and average pooling must agree on sizes; a disagreement would mean a wrong table.
    for op, *numbers in rows:
        if op in ("maxpool", "avgpool"):
            other = "avgpool" if op == "maxpool" else "maxpool"
            in_h, in_w, k_h, k_w, s_h, s_w, p_h, p_w, out_h, out_w = numbers
            assert output_size(other, (in_h, in_w), (k_h, k_w), (s_h, s_w), (p_h, p_w)) == (out_h, out_w)

    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    with OUTPUT.open("w") as table:
        table.write(HEADER + "\n")
        for row in rows:
            table.write(",".join(str(value) for value in row) + "\n")
    print(
        f"wrote {len(rows)} rows to {OUTPUT} (torch {torch.__version__}); "
        f"{rejected} configurations rejected by PyTorch were left out",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
