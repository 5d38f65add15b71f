#!/bin/bash
# The whole GPU check in one command, on the lent GPU machine (the `device` tool): the CUDA test
# binaries, then the MNIST examples on the GPU beside PyTorch's same recipes on the same GPU.
# The binaries come from tools/gpu/build.sh (checkout /tmp/gpu-wt), packed into an ignored
# `.gpu/` folder that the call carries: `.gpu/bins.tar` (bin/t_* test binaries, bin/mnist_*),
# `.gpu/cuh.tar` (dfdx's OUT_DIR headers) and a copy of this script; run as
# `bash .gpu/run.sh [tests|train|all]`. Logs go to $OUT.
set -u
exec > >(tee $OUT/run.log) 2>&1
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv
ln -sfn "$PWD" /tmp/gpu-wt
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
tar -xf .gpu/bins.tar -C .gpu
ldd .gpu/bin/mnist_lenet | grep -E "cuda|cublas|nvrtc|curand|not found"
phase=${1:-all}
if [ "$phase" = all ] || [ "$phase" = tests ]; then
echo "== tests $(date -u +%T)"
for b in .gpu/bin/t_*; do
  echo "== $b"
  timeout 100 "$b" --test-threads=4 > "$OUT/$(basename $b).log" 2>&1; rc=$?
  grep -E "test result|FAILED|panicked" "$OUT/$(basename $b).log" | head -20; echo "rc=$rc"
done
cat $OUT/t_*.log > $OUT/tests.log; rm -f $OUT/t_*.log
fi
if { [ "$phase" = all ] || [ "$phase" = tests ]; } && [ -x .gpu/bin/mnist_lenet ]; then
echo "== mnist_lenet on CUDA $(date -u +%T)"
timeout 200 .gpu/bin/mnist_lenet 10 0 2>&1 | grep -v "^\s*$" | tail -16
echo "== pytorch lenet on CUDA $(date -u +%T)"
DEVICE=cuda timeout 120 python3 tools/pytorch_mnist_recipes.py lenet 0
fi
if [ "$phase" = all ] || [ "$phase" = train ]; then
if [ -x .gpu/bin/mnist_mlp ]; then
echo "== mnist_mlp on CUDA $(date -u +%T)"
timeout 100 .gpu/bin/mnist_mlp 10 0 2>&1 | tail -3
echo "== pytorch mlp on CUDA $(date -u +%T)"
DEVICE=cuda timeout 100 python3 tools/pytorch_mnist_recipes.py mlp 0
fi
echo "== mnist_lstm on CUDA $(date -u +%T)"
timeout 200 .gpu/bin/mnist_lstm 10 0 2>&1 | tail -13
echo "== pytorch lstm on CUDA $(date -u +%T)"
DEVICE=cuda timeout 120 python3 tools/pytorch_mnist_recipes.py lstm 0
fi
echo "== done $(date -u +%T)"
