"""Reference values for tests/layers.rs, computed with PyTorch 2.15 (CPU, float32).

Run: /tmp/ref/bin/python tools/reference_layers.py
Prints Rust literals that tests/layers.rs pastes in; rerun after changing a case.
"""
import torch

torch.set_printoptions(precision=8)


def rust(values):
    return "[" + ", ".join(f"{v:.8}" for v in values) + "]"


# activations_compute_what_pytorch_computes: relu -> sigmoid -> tanh -> softmax -> log_softmax.
x = torch.tensor([-1.0, 0.5, 2.0, -0.25])
y = torch.log_softmax(torch.softmax(torch.tanh(torch.sigmoid(torch.relu(x))), 0), 0)
print("activations:", rust(y.tolist()))

# mlp_with_given_weights_matches_pytorch: linear(3) -> tanh -> linear(2) -> softmax on [4].
w1 = torch.tensor([[0.1 * (i - j) + 0.05 * j for j in range(4)] for i in range(3)])
b1 = torch.tensor([0.1, -0.2, 0.3])
w2 = torch.tensor([[0.3 - 0.2 * i + 0.1 * j for j in range(3)] for i in range(2)])
b2 = torch.tensor([-0.05, 0.05])
xb = torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.0, 0.25, -1.5, 2.0]])
h = torch.tanh(torch.nn.functional.linear(xb, w1, b1))
out = torch.softmax(torch.nn.functional.linear(h, w2, b2), 1)
print("w1:", [rust(r) for r in w1.tolist()])
print("w2:", [rust(r) for r in w2.tolist()])
print("mlp:", [rust(r) for r in out.tolist()])
