#!/bin/bash
# The whole GPU check in one command, on the lent GPU machine (the `device` tool): every CUDA
# test binary (unit tests, tests/*.rs, tests/parity.rs: Cpu against Cuda), then the MNIST
# examples on the GPU beside PyTorch's same recipes on the same GPU (the GPU timings).
#
# The binaries come from `tools/gpu/build.sh CHECKOUT` (run here first), packed in the ignored
# `.gpu/` folder that the call carries; the one device call is
#
#   run(command="bash tools/gpu/run.sh", carry=[".gpu"], timeout_s=600)
#
# `bash tools/gpu/run.sh tests` or `… train` runs one phase. Logs go to $OUT: run.log (this
# script's output), tests.log (every test binary's full output), parity.log (each parity test's
# result), summary.txt (one line per test binary). The criterion benches are CPU-only (see
# build.sh) and are not run here.
#
# The device call may run 600 s at most: phases that would start after BUDGET seconds (default
# 480) are skipped, saying so, so that the logs of the ones that ran always come back.
set -u
exec > >(tee $OUT/run.log) 2>&1
phase=${1:-all}
budget=${BUDGET:-480}
SECONDS=0
if [ ! -f .gpu/bins.tar.xz ]; then
  echo "no .gpu/bins.tar.xz: run tools/gpu/build.sh CHECKOUT here first, and carry .gpu"; exit 2
fi
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv
# The paths the binaries baked in: the checkout, dfdx's OUT_DIR, CUDA's include directory.
checkout=$(cat .gpu/checkout)
if [ "$checkout" != "$PWD" ]; then mkdir -p "$(dirname "$checkout")"; ln -sfn "$PWD" "$checkout"; fi
tar -xf .gpu/cuh.tar -C /
if [ ! -f /usr/local/cuda/include/cuda.h ]; then
  h=$(find / -path /proc -prune -o -name cuda.h -print 2>/dev/null | grep include/cuda.h | head -1)
  echo "cuda.h at $h"; mkdir -p /usr/local/cuda; ln -sfn "$(dirname "$h")" /usr/local/cuda/include
fi
libs=""
for l in libcublas.so.13 libcublasLt.so.13 libnvrtc.so.13 libcurand.so.10; do
  p=$(find / -path /proc -prune -o -name "$l" -print 2>/dev/null | head -1); echo "$l: $p"; libs="$libs:$(dirname "$p")"
done
export LD_LIBRARY_PATH="${libs#:}:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}"
tar -xJf .gpu/bins.tar.xz -C .gpu ||
  python3 -c "import tarfile; tarfile.open('.gpu/bins.tar.xz').extractall('.gpu')"
ls .gpu/bin | tr '\n' ' '; echo
ldd .gpu/bin/t_parity | grep -E "cuda|cublas|nvrtc|curand|not found"

# On this machine a missing GPU is a failure, not a skip (see typednet::testing::test_device).
export TYPEDNET_REQUIRE_CUDA=1
if [ "$phase" = all ] || [ "$phase" = tests ]; then
  echo "== tests $(date -u +%T)"
  : > $OUT/tests.log; : > $OUT/summary.txt
  # parity first: it is what only this machine can check.
  for b in .gpu/bin/t_parity $(ls .gpu/bin/t_* | grep -v t_parity); do
    name=$(basename $b)
    if [ $SECONDS -gt $budget ]; then echo "$name: not run, ${SECONDS}s of ${budget}s used" | tee -a $OUT/summary.txt; continue; fi
    timeout 120 "$b" --test-threads=4 > "$OUT/$name.log" 2>&1; rc=$?
    result=$(grep -E "^test result" "$OUT/$name.log" | tail -1)
    echo "$name: rc=$rc ${result:-no result line (crashed or timed out)}" | tee -a $OUT/summary.txt
    grep -E "FAILED|panicked|^skipping" "$OUT/$name.log" | head -20
    [ "$name" = t_parity ] && grep -E "^test " "$OUT/$name.log" > $OUT/parity.log
    { echo "===== $name (rc=$rc)"; cat "$OUT/$name.log"; } >> $OUT/tests.log; rm -f "$OUT/$name.log"
  done
  echo "== $(grep -c 'rc=0 ' $OUT/summary.txt) of $(wc -l < $OUT/summary.txt) test binaries passed"
fi
example() { # name, timeout, lines to keep, pytorch recipe
  if [ $SECONDS -gt $budget ]; then echo "== $1: not run, ${SECONDS}s of ${budget}s used"; return; fi
  [ -x .gpu/bin/$1 ] || { echo "== $1: not built"; return; }
  echo "== $1 on CUDA $(date -u +%T)"
  timeout $2 .gpu/bin/$1 10 0 2>&1 | grep -v "^\s*$" | tail -$3
  echo "== pytorch $4 on CUDA $(date -u +%T)"
  DEVICE=cuda timeout 120 python3 tools/pytorch_mnist_recipes.py $4 0
}
if [ "$phase" = all ] || [ "$phase" = train ]; then
  example mnist_mlp 100 3 mlp
  example mnist_lenet 200 16 lenet
  example mnist_lstm 200 13 lstm
fi
echo "== done $(date -u +%T), ${SECONDS}s"
