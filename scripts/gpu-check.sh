#!/usr/bin/env bash
# One GPU run for the GPU issue: the prebuilt CUDA binary's info, validate
# and bench on a real-size MMS checkpoint (built on the device with the
# transformers installed there), and the PyTorch peer on the same
# checkpoint, in the same call. Writes at most 8 files under $OUT (the
# device tool's limit): gpu-check.log (every step's stderr and timing),
# nvidia-smi.txt, info.json, validate.json, bench-mms.json, torch-peer.json.
#
# Build first, here: scripts/build-cuda.sh. Then, through the device tool:
#   command: scripts/gpu-check.sh   carry: ["target/cuda/vivace-cuda.gz"]   timeout_s: 540
# A dry run on a machine without a GPU works too (every step on the CPU):
#   OUT=/tmp/gpu-check VIVACE_BIN=target/cuda/release/vivace \
#     BENCH_ARGS=--quick PEER_ARGS="--runs 2 --warmup 1 --frames 50" scripts/gpu-check.sh
#
# Not covered yet: the default Piper voice. Its 60 MiB .onnx does not fit in
# what travels to the device beside the binary, and the device has no
# network to fetch it.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/target/gpu-check}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$out/gpu-check.log"
: > "$log"
say() { echo "gpu-check: $*" | tee -a "$log"; }

bin=${VIVACE_BIN:-}
if [ -z "$bin" ]; then
  [ -f target/cuda/vivace-cuda.gz ] || { say "no target/cuda/vivace-cuda.gz: run scripts/build-cuda.sh and carry it"; exit 1; }
  bin="$work/vivace"
  gunzip -c target/cuda/vivace-cuda.gz > "$bin" && chmod +x "$bin"
fi
# The performance layer keeps its batch cache here: a fresh one per run.
export XDG_CACHE_HOME="$work/cache"

# step NAME SECONDS COMMAND...: stdout to $out/NAME (when given), stderr to the log.
step() {
  local name=$1 limit=$2; shift 2
  local start; start=$(date +%s%N)
  say "$name: $*"
  if [ "$name" = "-" ]; then
    timeout "$limit" "$@" >> "$log" 2>&1
  else
    timeout "$limit" "$@" > "$out/$name" 2>> "$log"
  fi
  local rc=$?
  say "$name: exit $rc after $(( ($(date +%s%N) - start) / 1000000 )) ms"
  return 0
}

nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi" > "$out/nvidia-smi.txt"
step info.json 60 "$bin" info --json
step validate.json 120 "$bin" validate --json
# A checkpoint at the real MMS-TTS size (random weights; cost does not
# depend on their values), saved as the hub's are.
step - 180 python3 tools/make_mms_fixtures.py --real-only --real "$work/mms"
checkpoint="$work/mms/mms-real-size"
if [ -f "$checkpoint/model.safetensors" ]; then
  # shellcheck disable=SC2086 # the extra arguments are meant to split
  step - 240 "$bin" bench --voice "$checkpoint" ${BENCH_ARGS:---runs 5} --json "$out/bench-mms.json"
  # shellcheck disable=SC2086
  step - 240 python3 bench/torch_peer.py --checkpoint "$checkpoint" ${PEER_ARGS:---compile} --out "$out/torch-peer.json"
else
  say "no real-size checkpoint was built: bench and peer skipped"
fi
say "done; files: $(ls "$out" | tr '\n' ' ')"
