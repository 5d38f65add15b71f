"""PyTorch side of benches/mlp.rs: the same MLP training step and inference, CPU, 2 threads.

Run: /tmp/ref/bin/python tools/bench_pytorch_mlp.py
Prints the median time per iteration (ms) over rounds, as the Rust benchmark does.
"""
import statistics
import time

import torch

torch.set_num_threads(2)
torch.manual_seed(0)
BATCH = 128
net = torch.nn.Sequential(
    torch.nn.Linear(784, 256), torch.nn.ReLU(),
    torch.nn.Linear(256, 128), torch.nn.ReLU(),
    torch.nn.Linear(128, 10),
)
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
x = torch.randn(BATCH, 784)
targets = torch.softmax(torch.rand(BATCH, 10), 1)


def step():
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(net(x), targets)
    loss.backward()
    opt.step()


def infer():
    with torch.no_grad():
        net(x)


def median_ms(fn, rounds=15, iters=100):
    for _ in range(iters):
        fn()
    medians = []
    for _ in range(rounds):
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        medians.append(statistics.median(times) * 1e3)
    return min(medians), statistics.median(medians)


for name, fn in [("training step", step), ("inference", infer)]:
    best, typical = median_ms(fn)
    print(f"pytorch mlp 784-256-128-10 {name}, batch 128: {best:.3f} ms (median of rounds {typical:.3f} ms)")
