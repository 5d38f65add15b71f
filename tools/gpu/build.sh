#!/bin/bash
# Builds typednet's CUDA test binaries (the whole suite: unit tests, every tests/*.rs including
# tests/parity.rs) and examples on a machine WITHOUT a GPU (this dev machine), for the lent GPU
# machine (H100, driver 580, CUDA 13.0), which has no Rust toolchain and no network, and packs
# them into CHECKOUT/.gpu/ (git-ignored) for `tools/gpu/run.sh` to run there. See
# docs/DESIGN.md, "Devices", for the whole procedure:
#
#   tools/gpu/build.sh /tmp/gpu-wt                       # here, ~20 min on 2 cores from cold
#   device tool: run(command="bash tools/gpu/run.sh", carry=[".gpu"], timeout_s=600)
#
# What it needs here: pip (the CUDA 13.0 compiler and libraries come as PyPI wheels, ≈900 MB
# unpacked), gcc (for a stub libcuda.so: the real one is the driver's, present only there),
# python3, strip and xz. The binaries bake in CARGO_MANIFEST_DIR (the checkout),
# CUDA_INCLUDE_DIR (/usr/local/cuda/include) and dfdx's OUT_DIR (for its run-time NVRTC kernels'
# headers); .gpu/ records them and run.sh recreates those paths.
#
# The criterion benches (benches/*.rs) are not built: they are written for `Cpu` only (they
# compare typednet's CPU kernels with the references), so the GPU timings are the MNIST
# examples' (run.sh).
#
# Usage: tools/gpu/build.sh CHECKOUT [cargo target selection, default: --lib --tests --examples]
set -euo pipefail
checkout=$(cd "$1" && pwd); shift
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
export CARGO_TARGET_DIR=${GPU_TARGET_DIR:-/tmp/gpu-target} LIBRARY_PATH=/usr/local/cuda/lib
cd "$checkout"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(--lib --tests --examples)
json=$(mktemp)
cargo build --release --features cuda "${targets[@]}" \
  --message-format=json-render-diagnostics > "$json"

# Pack: .gpu/bins.tar.xz (bin/t_<test target> for every test binary, bin/<example> for every
# example, debug info stripped), .gpu/cuh.tar (dfdx's OUT_DIR, absolute paths), .gpu/checkout.
rm -rf .gpu && mkdir -p .gpu/bin
python3 - "$json" <<'EOF'
import json, shutil, sys
dfdx_out = None
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "build-script-executed" and "dfdx" in m["package_id"]:
        dfdx_out = m["out_dir"]
    if m.get("reason") != "compiler-artifact" or not m.get("executable"):
        continue
    if m["profile"]["test"]:
        name = "t_" + m["target"]["name"]
    elif "example" in m["target"]["kind"]:
        name = m["target"]["name"]
    else:
        continue
    shutil.copy(m["executable"], ".gpu/bin/" + name)
    print(".gpu/bin/" + name)
open(".gpu/dfdx_out_dir", "w").write(dfdx_out or "")
EOF
rm -f "$json"
strip --strip-debug .gpu/bin/*
# One xz stream with a 64 MiB dictionary: the test binaries share most of their code.
tar -C .gpu -cf - bin | xz -9 -T1 > .gpu/bins.tar.xz
rm -rf .gpu/bin
out_dir=$(cat .gpu/dfdx_out_dir)
if [ -n "$out_dir" ]; then tar -C / -cf .gpu/cuh.tar "${out_dir#/}"; else tar -cf .gpu/cuh.tar -T /dev/null; fi
echo "$checkout" > .gpu/checkout
size=$(du -cb .gpu/* | tail -1 | cut -f1)
echo "packed .gpu/: $((size / 1024 / 1024)) MiB (the device tool carries at most 64 MiB)"
if [ "$size" -gt $((62 * 1024 * 1024)) ]; then
  echo "too big to carry: build fewer targets (e.g. tools/gpu/build.sh $checkout --lib --tests)" >&2
  exit 1
fi
