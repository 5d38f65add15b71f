#!/usr/bin/env bash
# Runs the typednet MLP benchmark and its PyTorch twin in turn, three times each, so that both
# see the same machine state; BENCHMARKS.md quotes the ratios of these runs.
# Needs PyTorch in a venv outside the repo: python3 -m venv /tmp/ref && /tmp/ref/bin/pip install torch==2.15.0
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/tmp/ref/bin/python}
cargo bench --bench mlp --no-run >/dev/null 2>&1
for round in 1 2 3; do
  echo "== round $round"
  cargo bench --bench mlp -- --warm-up-time 2 --measurement-time 5 2>/dev/null | grep -E "^mlp|^dfdx|time:"
  "$PYTHON" tools/bench_pytorch_mlp.py 2>/dev/null
done
