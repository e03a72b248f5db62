#!/usr/bin/env bash
# Builds the CUDA binary of vivace on a machine without a GPU or a CUDA
# installation: the CUDA 13.0 compiler and headers come from PyPI into a
# throwaway virtual environment (pins: the versions PyTorch 2.11 ships, whose
# PTX the lent machines' driver 580 loads). The default `cargo build` and CI
# stay CPU-only and need none of this.
#
#   scripts/build-cuda.sh            # -> target/cuda/release/vivace, and what
#                                    #    travels: target/cuda/vivace-cuda.xz and
#                                    #    target/cuda/en_US-joe-medium.safetensors
#   VIVACE_CUDA_FEATURES=cuda,cudnn scripts/build-cuda.sh
#                                    # -> target/cuda-cudnn/vivace-cuda.xz
#   scripts/build-cuda.sh --check    # type-checks the CUDA code (cargo check,
#                                    #    candle's kernels compiled to PTX by
#                                    #    nvcc), links and converts nothing:
#                                    #    what CI runs so GPU code stays buildable
#
# candle-core 0.11 links cudarc's libraries directly (its `dynamic-linking`;
# cudarc refuses run-time loading alongside it), so the binary needs the
# NVIDIA driver's libcuda.so.1 to start at all: it is a binary for GPU
# machines, and the CPU fallback applies where a driver is present but no
# device starts. Its run path points at the lent machines' CUDA 13 libraries
# (PyTorch's venv); elsewhere set LD_LIBRARY_PATH. Keep target/cuda between
# builds: a cold build spends about 11 minutes in nvcc on candle's kernels
# (2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

check_only=false
case "${1:-}" in
  --check) check_only=true ;;
  "") ;;
  *) echo "build-cuda: unknown argument $1 (only --check)" >&2; exit 2 ;;
esac
features=${VIVACE_CUDA_FEATURES:-cuda}
compute_cap=${CUDA_COMPUTE_CAP:-90}
venv=${VIVACE_CUDA_VENV:-$PWD/target/cuda-toolkit}
# Where the lent GPU machines keep the CUDA 13 libraries (PyTorch's venv).
runtime_libs=${VIVACE_CUDA_RPATH:-/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib}

pins=(
  nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
  nvidia-cuda-cccl==13.0.85 nvidia-cuda-runtime==13.0.96
  nvidia-cublas==13.1.0.3 nvidia-curand==10.4.0.35 nvidia-cuda-nvrtc==13.0.88
)
[[ ",$features," == *",cudnn,"* ]] && pins+=(nvidia-cudnn-cu13==9.19.0.56)
# A check compiles and links nothing against the libraries: the compiler and
# the headers are enough.
$check_only && pins=(nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
  nvidia-cuda-cccl==13.0.85 nvidia-cuda-runtime==13.0.96)

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# One pip call: `pip install --target` twice into one folder skips the second.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cuda_home="$site/nvidia/cu13"
[ -x "$cuda_home/bin/nvcc" ] || { echo "build-cuda: no nvcc in $cuda_home/bin" >&2; exit 1; }

if $check_only; then
  export CUDA_HOME="$cuda_home" CUDA_PATH="$cuda_home" CUDA_ROOT="$cuda_home"
  export PATH="$cuda_home/bin:$PATH" CUDA_COMPUTE_CAP="$compute_cap" CUDARC_CUDA_VERSION=13000
  cargo check -p vivace --features "$features" --all-targets --target-dir target/cuda-check
  echo "build-cuda: the $features code type-checks (sm_${compute_cap} kernels compiled)"
  exit 0
fi

# The wheels ship libX.so.N only; the linker and cudarc's build look for
# lib64/libX.so.
mkdir -p "$cuda_home/lib64"
for lib in "$cuda_home"/lib/lib*.so.*; do
  base=$(basename "$lib"); ln -sf "$lib" "$cuda_home/lib64/${base%%.so.*}.so"
done
if [ -d "$site/nvidia/cudnn/lib" ]; then
  for lib in "$site"/nvidia/cudnn/lib/lib*.so.*; do
    base=$(basename "$lib"); ln -sf "$lib" "$cuda_home/lib64/${base%%.so.*}.so"
  done
fi
# Linking needs libcuda.so, which only the driver installs. A stub with the
# driver API's names (taken from cudarc's own bindings) and the driver's
# SONAME stands in at link time; at run time the real libcuda.so.1 is loaded.
stub="$venv/libcuda-stub"
mkdir -p "$stub"
if [ ! -f "$stub/libcuda-stub.c" ] || [ ! -f "$stub/libcuda.so" ]; then
  cudarc_src=$(cargo metadata --format-version 1 --features vivace/cuda 2>/dev/null |
    "$venv/bin/python" -c 'import json, os, sys
for p in json.load(sys.stdin)["packages"]:
    if p["name"] == "cudarc":
        print(os.path.dirname(p["manifest_path"]))')
  [ -n "$cudarc_src" ] || { echo "build-cuda: cudarc's sources not found (cargo fetch first)" >&2; exit 1; }
  grep -ho 'pub unsafe fn cu[A-Za-z0-9_]*(' "$cudarc_src/src/driver/sys/mod.rs" |
    sed 's/pub unsafe fn \(.*\)(/int \1(void) { return 999; }/' | sort -u > "$stub/libcuda-stub.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub/libcuda.so" "$stub/libcuda-stub.c"
fi
# For checks on this machine only (LD_LIBRARY_PATH=$stub): every driver call
# fails, as with a driver but no usable GPU. The stub is never in the run path.
ln -sf libcuda.so "$stub/libcuda.so.1"

export CUDA_HOME="$cuda_home" CUDA_PATH="$cuda_home" CUDA_ROOT="$cuda_home"
export PATH="$cuda_home/bin:$PATH"
export CUDA_COMPUTE_CAP="$compute_cap"  # candle-kernels makes it sm_90a
export CUDARC_CUDA_VERSION=13000
rpath_args=""
IFS=: read -ra dirs <<< "$runtime_libs"
for d in "${dirs[@]}"; do rpath_args+=" -C link-arg=-Wl,-rpath,$d"; done
export RUSTFLAGS="${RUSTFLAGS:-} -L native=$stub -L native=$cuda_home/lib64$rpath_args"

# One build directory per feature set (cargo unifies features per directory).
if [[ ",$features," == *",cudnn,"* ]]; then dir=target/cuda-cudnn; else dir=target/cuda; fi
cargo build --release -p vivace --features "$features" --target-dir "$dir"

bin=$dir/release/vivace
echo "build-cuda: shared libraries the binary needs:"
readelf -d "$bin" | grep NEEDED
# What travels to a GPU machine (64 MiB limit for everything carried):
# stripped and xz-compressed, about 8 MB (gzip: 16 MB).
strip -o "$dir/vivace-cuda" "$bin"
xz -9e -T2 -f "$dir/vivace-cuda"
ls -l "$bin" "$dir/vivace-cuda.xz"
# The default voice travels as a compact voice (f16 weights, 30 MiB instead
# of the .onnx's 60 MiB): converted here by the binary just built (it falls
# back to the CPU through the stub; conversion needs no device).
# Libraries to run the binary here: the stub driver and the wheels' CUDA
# (and cuDNN) libraries.
local_libs="$stub:$cuda_home/lib"
[ -d "$site/nvidia/cudnn/lib" ] && local_libs+=":$site/nvidia/cudnn/lib"
voice=target/cuda/en_US-joe-medium.safetensors
mkdir -p target/cuda
LD_LIBRARY_PATH="$local_libs" "$bin" convert --force -o "$voice"
ls -l "$voice"
# The PyTorch T3 peer's code (bench/t3_torch_device.py takes T3's modules
# from it; the GPU machine has torch and transformers, not chatterbox-tts).
python3 -m pip download -q --no-deps chatterbox-tts==0.1.7 -d target/cuda ||
  echo "build-cuda: no chatterbox-tts wheel (offline?): the GPU check will have no PyTorch T3 row"
echo "build-cuda: built $bin ($features, sm_${compute_cap}); $dir/vivace-cuda.xz, $voice and target/cuda/chatterbox_tts-0.1.7-py3-none-any.whl travel"
echo "build-cuda: check here: LD_LIBRARY_PATH=$local_libs $bin info  (falls back to the CPU)"
