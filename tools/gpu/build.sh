#!/bin/bash
# Builds typednet's CUDA test binaries and examples on a machine WITHOUT a GPU (this dev machine),
# for the lent GPU machine (H100, driver 580, CUDA 13.0), which has no Rust toolchain and no
# network. Then `tools/gpu/run.sh` runs them there (see docs/DESIGN.md, "CUDA").
#
# What it needs here: pip (the CUDA 13.0 compiler and libraries come as PyPI wheels, ≈900 MB
# unpacked) and gcc (for a stub libcuda.so: the real one is the driver's, present only there).
# The binaries bake in CARGO_MANIFEST_DIR (the checkout), CUDA_INCLUDE_DIR (/usr/local/cuda/include)
# and dfdx's OUT_DIR (for its run-time NVRTC kernels' headers); run.sh recreates those paths.
#
# Usage: tools/gpu/build.sh CHECKOUT [cargo build arguments…]
#   e.g. tools/gpu/build.sh /tmp/gpu-wt --lib --tests --examples
set -euo pipefail
checkout=$1; shift
wheels=/tmp/cudaw
if [ ! -x $wheels/x/nvidia/cu13/bin/nvcc ]; then
  mkdir -p $wheels && cd $wheels
  pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d . \
    "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-crt==13.0.*" \
    "nvidia-nvvm==13.0.*" "nvidia-cuda-cccl==13.0.*" "nvidia-cublas" "nvidia-cuda-nvrtc==13.0.*" \
    "nvidia-curand"
  mkdir -p x && for f in *.whl; do unzip -q -o "$f" -d x; done
fi
cuda=$wheels/x/nvidia/cu13
# A stub libcuda.so (soname libcuda.so.1) defining every driver function cudarc 0.9.15 binds,
# so the binaries link; at run time the driver's libcuda.so.1 is loaded instead.
if [ ! -f $cuda/lib/libcuda.so ]; then
  registry=$(ls -d ~/.cargo/registry/src/*/cudarc-0.9.15)
  grep -ohE "pub fn cu[A-Za-z0-9_]+" "$registry/src/driver/sys.rs" | sed 's/pub fn //' | sort -u |
    awk 'BEGIN { print "int cuda_stub;" } { print "int " $1 "(void) { return 999; }" }' > $wheels/stub.c
  gcc -shared -fPIC -o $cuda/lib/libcuda.so -Wl,-soname,libcuda.so.1 $wheels/stub.c
  (cd $cuda/lib && for l in cublas cublasLt nvrtc curand; do ln -sf "$(ls lib$l.so.* | head -1)" lib$l.so; done)
fi
ln -sfn $cuda /usr/local/cuda
# dfdx's build script asks nvidia-smi for the compute capability: the H100's is 9.0.
mkdir -p $wheels/bin && printf '#!/bin/sh\necho compute_cap\necho 9.0\n' > $wheels/bin/nvidia-smi
chmod +x $wheels/bin/nvidia-smi
export PATH=$wheels/bin:/usr/local/cuda/bin:$PATH CUDA_ROOT=/usr/local/cuda CUDA_COMPUTE_CAP=90
export CARGO_TARGET_DIR=/tmp/gpu-target LIBRARY_PATH=/usr/local/cuda/lib
cd "$checkout"
cargo build --release --features cuda "$@"
