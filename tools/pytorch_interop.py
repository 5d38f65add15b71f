"""PyTorch in and out (issue #9, part 2): checkpoints with PyTorch's own names, for
`tests/pytorch_interop.rs`.

    python tools/pytorch_interop.py lenet DIR      # LeNet-5 (a hand-written nn.Module)
    python tools/pytorch_interop.py resnet18 DIR   # torchvision's resnet18, random init
    python tools/pytorch_interop.py check ARCH CHECKPOINT EXPECTED

`lenet` and `resnet18` write `DIR/ARCH.safetensors` (the model's `state_dict()`, PyTorch's names,
float32) and `DIR/ARCH_io.safetensors` (`input` and the eval-mode `output` on it). The LeNet-5
files are small and committed under `tests/fixtures/interop/`; ResNet-18's 45 MB are generated
by the test run into `target/` when PyTorch is available.

`check` is the export test: it loads a checkpoint *written by typednet* in PyTorch's naming into
a fresh PyTorch model with `load_state_dict(strict=True)` (every name present, none extra, every
shape right), runs it on `EXPECTED`'s `input` and compares with `EXPECTED`'s `output` (typednet's
own output), printing the largest difference and exiting 1 above 1e-4.

The safetensors format (an 8-byte little-endian header length, a JSON header, raw little-endian
data) is read and written here by hand, so that only torch and torchvision are needed.

Run with PyTorch 2.15 from a throwaway venv, e.g.
`/tmp/ref/bin/python tools/pytorch_interop.py lenet tests/fixtures/interop`.
"""
import json
import struct
import sys
from pathlib import Path

import torch
from torch import nn

TOLERANCE = 1e-4
DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
TORCH_DTYPES = {v: k for k, v in DTYPES.items()}


def save_safetensors(tensors, path):
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        data = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {
            "dtype": DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for chunk in chunks:
            f.write(chunk)


def load_safetensors(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = TORCH_DTYPES[info["dtype"]]
        t = torch.frombuffer(bytearray(body[begin:end]), dtype=dtype)
        out[name] = t.reshape(info["shape"])
    return out


class LeNet5(nn.Module):
    """LeNet-5 as `examples/mnist_lenet.rs` declares it, written the way PyTorch users do."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


def build(arch):
    """The model with seeded random weights, and a fixed input batch."""
    torch.manual_seed(0)
    if arch == "lenet":
        model = LeNet5()
        x = torch.rand(4, 1, 28, 28)
    elif arch == "resnet18":
        import torchvision

        model = torchvision.models.resnet18(weights=None)
        # Freshly initialised batch norms are the identity in eval mode (mean 0, variance 1,
        # scale 1, shift 0), which would let a loader that drops them pass: make them count.
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0.0, 0.1)
                    m.running_mean.normal_(0.0, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
        # 64×64 (Tiny ImageNet's size) keeps the test fast; the weights are those of 224×224.
        x = torch.rand(2, 3, 64, 64)
    else:
        sys.exit(f"unknown architecture {arch!r}: lenet or resnet18")
    return model.eval(), x


def write(arch, directory):
    model, x = build(arch)
    with torch.no_grad():
        y = model(x)
    # `num_batches_tracked` is a training counter with no effect on the output; typednet keeps
    # none, and PyTorch's batch norm fills it in when a state dict lacks it.
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    directory = Path(directory)
    save_safetensors(state, directory / f"{arch}.safetensors")
    save_safetensors({"input": x, "output": y}, directory / f"{arch}_io.safetensors")
    print(f"{arch}: {len(state)} tensors, {sum(v.numel() for v in state.values()):,} numbers; "
          f"output {list(y.shape)}, |y| max {y.abs().max().item():.4f}")


def check(arch, checkpoint, expected):
    model, _ = build(arch)
    for p in model.state_dict().values():
        p.data.zero_() if p.is_floating_point() else None
    state = load_safetensors(checkpoint)
    model.load_state_dict(state, strict=True)
    io = load_safetensors(expected)
    with torch.no_grad():
        y = model(io["input"])
    diff = (y - io["output"]).abs().max().item()
    print(f"PyTorch loaded {len(state)} tensors from {checkpoint} with strict=True; "
          f"largest output difference from typednet's {diff:.3e}")
    if not diff <= TOLERANCE:
        sys.exit(1)


def main():
    if len(sys.argv) == 3 and sys.argv[1] in ("lenet", "resnet18"):
        write(sys.argv[1], sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
