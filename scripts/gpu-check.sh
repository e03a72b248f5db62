#!/usr/bin/env bash
# One GPU run for the GPU issue, from carried files alone (the device has no
# network): the prebuilt CUDA binary's info; validate on the default voice
# (carried as a compact f16 voice) at the planned precision and with a bf16
# decoder; bench on the default voice; the model alone on the PyTorch peer's
# workloads on a real-size MMS checkpoint (built on the device with the
# transformers installed there), at the planned precision and with a bf16
# decoder, and the same with the cuDNN build when it is carried, and the
# decoder replayed as a CUDA graph; and the PyTorch peer on the same
# checkpoint and input, in the same call.
#
# Writes at most 8 files under $OUT (the device tool's limit): gpu-check.log
# (every step's stderr and timing, `ldd`'s missing libraries, and the bf16
# validate's table), nvidia-smi.txt, info.json, validate.json (`planned`:
# the plan's precision, TF32 here, whose errors above the f32 bound are
# WARN; `f32`: strict f32, the device-correctness check; `cudnn-f32`: the
# same with the cuDNN build), bench-voice.json,
# model.json (the `bench --model-only` reports by variant), families.json
# (Chatterbox's T3 decode and S3Gen, random weights at the published
# shapes) and torch-peer.json. A warm-up synthesis first takes the PTX JIT out of
# validate's limit.
#
# Build first, here: scripts/build-cuda.sh (and, for the cuDNN rows,
# VIVACE_CUDA_FEATURES=cuda,cudnn scripts/build-cuda.sh). The tree travels
# with every call and its test fixtures (46 MB) would put it over the
# tool's 64 MiB with this carry: take them out of the index for the call
# (scripts/gpu-tree.sh slim; `size` checks the total). Then, through the
# device tool:
#   command: scripts/gpu-check.sh
#   carry:   ["target/cuda/vivace-cuda.xz", "target/cuda/en_US-joe-medium.safetensors",
#             "target/cuda-cudnn/vivace-cuda.xz",
#             "target/cuda/chatterbox_tts-0.1.7-py3-none-any.whl"]
#   timeout_s: 540
# 8 + 31 + 8 + 0.1 MB with the 3 MB slim tree; then scripts/gpu-tree.sh restore.
# A dry run on a machine without a GPU works too (every step on the CPU,
# through the stub driver build-cuda.sh leaves in target/cuda-toolkit):
#   OUT=/tmp/gpu-check BENCH_ARGS=--quick MODEL_ARGS="--quick --tokens 40 --frames 50" T3_ARGS="--t3-tokens 8" \
#     PEER_ARGS="--runs 2 --warmup 1 --tokens 40 --frames 50" \
#     LD_LIBRARY_PATH=<stub>:<cu13 lib> scripts/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/target/gpu-check}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$out/gpu-check.log"
: > "$log"
say() { echo "gpu-check: $*" | tee -a "$log"; }

# unpack PACKED OUT: the carried binary, xz-compressed.
unpack() {
  if command -v xz > /dev/null; then
    xz -dc "$1" > "$2"
  else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  fi && chmod +x "$2"
}
bin=${VIVACE_BIN:-}
if [ -z "$bin" ]; then
  [ -f target/cuda/vivace-cuda.xz ] || { say "no target/cuda/vivace-cuda.xz: run scripts/build-cuda.sh and carry it"; exit 1; }
  bin="$work/vivace"
  unpack target/cuda/vivace-cuda.xz "$bin" || { say "cannot unpack target/cuda/vivace-cuda.xz"; exit 1; }
fi
cudnn_bin=""
if [ -f target/cuda-cudnn/vivace-cuda.xz ]; then
  cudnn_bin="$work/vivace-cudnn"
  unpack target/cuda-cudnn/vivace-cuda.xz "$cudnn_bin" || cudnn_bin=""
fi
voice=${VIVACE_GPU_VOICE:-target/cuda/en_US-joe-medium.safetensors}
[ -f "$voice" ] || say "no $voice: the default-voice steps will fail (run scripts/build-cuda.sh and carry it)"
# The performance layer keeps its batch cache and espeak-ng's data here: a
# fresh one per run.
export XDG_CACHE_HOME="$work/cache"
unset VIVACE_PRECISION VIVACE_DEVICE VIVACE_VOICE

# The whole run stays inside GPU_CHECK_SECONDS (default 500, under the
# device call's 540): each step gets at most what is left, and a step with
# under 10 s left is skipped. The per-step limits catch a hung step; they add
# up to more than the budget, and the order puts what the targets need first.
deadline=$(( $(date +%s) + ${GPU_CHECK_SECONDS:-500} ))

# step NAME SECONDS COMMAND...: stdout to $out/NAME, or to NAME itself when
# it is an absolute path, or to the log when NAME is -; stderr to the log.
step() {
  local name=$1 limit=$2; shift 2
  local left=$(( deadline - $(date +%s) ))
  if [ "$left" -lt 10 ]; then
    say "$name: skipped, out of time: $*"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local start; start=$(date +%s%N)
  say "$name: $*"
  case "$name" in
    -) timeout "$limit" "$@" >> "$log" 2>&1 ;;
    /*) timeout "$limit" "$@" > "$name" 2>> "$log" ;;
    *) timeout "$limit" "$@" > "$out/$name" 2>> "$log" ;;
  esac
  local rc=$?
  say "$name: exit $rc after $(( ($(date +%s%N) - start) / 1000000 )) ms"
  return 0
}

# merge DIR OUT: every DIR/*.json into one OUT object keyed by file stem,
# rewritten after each step (so a run cut short keeps what it measured, and
# the files under $OUT stay within the device tool's 8).
merge() {
  python3 - "$1" "$2" <<'PY' >> "$log" 2>&1
import json, pathlib, sys
reports = {}
for p in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    try:
        reports[p.stem] = json.loads(p.read_text())
    except ValueError as e:
        reports[p.stem] = {"error": f"unreadable report: {e}"}
pathlib.Path(sys.argv[2]).write_text(json.dumps(reports, indent=1) + "\n")
PY
}

# Ordered by what the targets need most, in case the call runs out of time:
# the device's facts and checks (short); each target's own row (the default
# voice, MMS at batch 1, Chatterbox); then the peers and the variants.
nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi" > "$out/nvidia-smi.txt"
# Libraries the binaries cannot find (the run path names the lent machines'
# CUDA 13 and cuDNN): in the log, before anything fails for want of them.
for b in "$bin" $cudnn_bin; do
  missing=$(ldd "$b" 2>&1 | grep "not found" || true)
  say "ldd $(basename "$b"): ${missing:-every library found}"
done
step info.json 30 "$bin" info --json
# The first process to load the kernels JIT-compiles candle's sm_90a PTX
# (about 5 MB; cached for later processes): done here, under its own limit,
# not inside validate's.
step - 180 "$bin" say --voice "$voice" "Warm up." -f "$work/warm-up.wav"
# validate.json: the planned precision (TF32 on this card: an error above
# the f32 bound is reported as WARN, not failed) and strict f32, the
# device-correctness check.
mkdir -p "$work/validate"
step "$work/validate/planned.json" 60 "$bin" validate --json --voice "$voice"
merge "$work/validate" "$out/validate.json"
step "$work/validate/f32.json" 60 env VIVACE_PRECISION=f32 "$bin" validate --json --voice "$voice"
merge "$work/validate" "$out/validate.json"
# The cuDNN build in f32: NVIDIA_TF32_OVERRIDE=0 must keep its convolutions
# out of TF32 (cuDNN's default math), so strict f32 must pass there too.
if [ -n "$cudnn_bin" ]; then
  step "$work/validate/cudnn-f32.json" 60 env VIVACE_PRECISION=f32 "$cudnn_bin" validate --json --voice "$voice"
  merge "$work/validate" "$out/validate.json"
fi
mkdir -p "$work/model"
# model BINARY NAME VOICE [ENV…]: one `bench --model-only` report, merged
# into $out/model.json at once (so a run cut short keeps what it measured).
model() {
  local b=$1 name=$2 v=$3; shift 3
  # shellcheck disable=SC2086 # the extra arguments are meant to split
  step - 60 env "$@" "$b" bench --model-only --voice "$v" ${MODEL_ARGS:---runs 10} --json "$work/model/$name.json"
  merge "$work/model" "$out/model.json"
}
# Each target's own row first (the default voice's throughput, MMS at batch
# 1, T3's decode), then the peers and the variants, so that a run cut short
# by the budget loses variants, not targets.
# The default voice: full synthesis at batch 1, 8 and 32 (the ≥ 1,000 s of
# audio per second target).
model "$bin" voice-planned "$voice" VIVACE_LOG=warn
# A checkpoint at the real MMS-TTS size (random weights; cost does not
# depend on their values), saved as the hub's are.
step - 90 python3 tools/make_mms_fixtures.py --real-only --real "$work/mms"
checkpoint="$work/mms/mms-real-size"
if [ -f "$checkpoint/model.safetensors" ]; then
  model "$bin" mms-planned "$checkpoint" VIVACE_LOG=warn
else
  say "no real-size checkpoint was built: the MMS rows and the peer skipped"
fi
# families.json: Chatterbox at its published shapes with random weights
# (speed depends on shapes, not values; no checkpoint can travel): T3's
# decode rate at batch 1 and 8, the PyTorch eager peer on the same device
# (chatterbox-tts 0.1.7's `T3.inference`, batch 1, from the carried
# wheel), and S3Gen's real-time factor (10-step flow and Turbo's 2-step
# meanflow).
mkdir -p "$work/families"
# shellcheck disable=SC2086 # T3_ARGS (a dry run's shorter decode) is meant to split
step - 120 "$bin" bench --t3 --t3-batches 1,8 --runs 1 ${T3_ARGS:-} --json "$work/families/t3.json"
merge "$work/families" "$out/families.json"
wheel=target/cuda/chatterbox_tts-0.1.7-py3-none-any.whl
if [ -f "$wheel" ]; then
  # shellcheck disable=SC2086
  step - 150 python3 bench/t3_torch_device.py --wheel "$wheel" --device "${TORCH_DEVICE:-cuda}" ${T3_PEER_ARGS:-} --out "$work/families/t3-torch.json"
  merge "$work/families" "$out/families.json"
else
  say "no $wheel carried: no PyTorch T3 row"
fi
step - 120 "$bin" bench --s3gen --runs 1 --json "$work/families/s3gen.json"
merge "$work/families" "$out/families.json"
if [ -f "$checkpoint/model.safetensors" ]; then
  # The decoder as a CUDA graph (experimental), alone in its process: a
  # failed capture is a row's error, a crash loses only this step. Before
  # the peer, whose torch.compile may take most of its 200 s.
  MODEL_ARGS="${MODEL_ARGS:---runs 10} --graphs" model "$bin" mms-graphs "$checkpoint" VIVACE_LOG=warn
  if [ -n "$cudnn_bin" ]; then
    model "$cudnn_bin" mms-cudnn-planned "$checkpoint" VIVACE_LOG=warn
  else
    say "no target/cuda-cudnn/vivace-cuda.xz carried: no cuDNN rows"
  fi
  # shellcheck disable=SC2086
  step - 200 python3 bench/torch_peer.py --checkpoint "$checkpoint" ${PEER_ARGS:---compile} --out "$out/torch-peer.json"
  model "$bin" mms-bf16-decoder "$checkpoint" VIVACE_PRECISION=bf16
  if [ -n "$cudnn_bin" ]; then
    model "$cudnn_bin" mms-cudnn-bf16-decoder "$checkpoint" VIVACE_PRECISION=bf16
  fi
fi
# The default voice's variants: the bf16 decoder's speed and bounds, and
# bench at the optimizer's batch.
model "$bin" voice-bf16-decoder "$voice" VIVACE_PRECISION=bf16
step - 60 env VIVACE_PRECISION=bf16 "$bin" validate --voice "$voice"
# shellcheck disable=SC2086
step - 120 "$bin" bench --voice "$voice" ${BENCH_ARGS:---runs 3} --json "$out/bench-voice.json"
say "done; files: $(ls "$out" | tr '\n' ' ')"
