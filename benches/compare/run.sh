#!/usr/bin/env bash
# typednet against PyTorch 2.15 (CPU), side by side in one run, as one table.
#
#   benches/compare/run.sh                      # every case (about 3 minutes on 2 cores)
#   benches/compare/run.sh conv                 # the cases of one bench target (conv, training)
#   benches/compare/run.sh lenet5 conv/32to32   # cases whose name contains a word
#   BENCH_TIME=1 benches/compare/run.sh         # a quick look: 1 s per side and case
#   BENCH_ROUNDS=3 benches/compare/run.sh       # three interleaved rounds: best (median)
#
# Environment:
#   BENCH_THREADS  threads on both sides: RAYON_NUM_THREADS and torch.set_num_threads
#                  (default: nproc)
#   BENCH_TIME     criterion's --measurement-time per case and side, seconds (default 3)
#   BENCH_WARMUP   --warm-up-time, seconds (default 1)
#   BENCH_SAMPLES  --sample-size (default 10, criterion's minimum)
#   BENCH_ROUNDS   interleaved rounds (default 1)
#   TORCH_VENV     the throwaway venv holding torch==2.15.0 (default /tmp/ref; created if
#                  missing, outside the repository; the CUDA wheel pulls ~5 GB, runs on the CPU)
#   CARGO_TARGET_DIR  as for cargo
#
# The cases: benches/conv.rs and benches/training.rs (criterion) and their twins of the same
# names in benches/compare/pytorch_benches.py; compare.py runs them and prints the table.
set -euo pipefail
cd "$(dirname "$0")/../.."

THREADS=${BENCH_THREADS:-$(nproc)}
VENV=${TORCH_VENV:-/tmp/ref}
TORCH_VERSION=2.15.0

if ! "$VENV/bin/python" -c 'import torch' >/dev/null 2>&1; then
  echo "== creating $VENV with torch==$TORCH_VERSION" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "torch==$TORCH_VERSION"
fi
have=$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)
if [ "$have" != "$TORCH_VERSION" ]; then
  echo "warning: $VENV has torch $have, not $TORCH_VERSION" >&2
fi

echo "== building the benches" >&2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! artifacts=$(cargo bench --bench '*' --no-run --message-format=json 2>"$log"); then
  cat "$log" >&2
  exit 1
fi
binaries=()
while IFS= read -r entry; do
  binaries+=(--bench-binary "$entry")
done < <(python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
            and "bench" in msg["target"]["kind"]:
        print(msg["target"]["name"] + "=" + msg["executable"])
' <<<"$artifacts")
if [ ${#binaries[@]} -eq 0 ]; then
  echo "error: cargo built no bench binary" >&2
  exit 1
fi

# torch warns about NumPy being absent; nothing here needs it.
export PYTHONWARNINGS=ignore
python3 benches/compare/compare.py "${binaries[@]}" \
  --python "$VENV/bin/python" --threads "$THREADS" \
  --warm-up-time "${BENCH_WARMUP:-1}" --measurement-time "${BENCH_TIME:-3}" \
  --sample-size "${BENCH_SAMPLES:-10}" --rounds "${BENCH_ROUNDS:-1}" "$@"
