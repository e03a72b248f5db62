#!/usr/bin/env python3
"""The PyTorch peer of the GPU issue: `transformers.VitsModel` (the MMS-TTS
architecture) timed the way users run it, on the checkpoint Vivace loads.

Variants:
- `eager`: PyTorch's defaults.
- `seed`: the seed module's settings, i.e. TF32 matmuls and convolutions,
  cuDNN benchmark, and `inference_mode`.
- `compile`: `seed` plus `torch.compile`.

Workloads:
- Full synthesis, batch 1, of N random token ids (the same ids as
  `vivace bench --model-only`).
- The HiFi-GAN decoder alone on random latents of F frames, at batch 1 and
  batch 8.

Each row gives the median, minimum and maximum time after warm-up, the audio
seconds produced and the real-time factor. A variant that fails (e.g.
`torch.compile` on the model's data-dependent lengths) is recorded with its
error, not hidden.

    python3 bench/torch_peer.py --checkpoint DIR [--compile] [--out FILE.json]

DIR is a Hugging Face VITS checkpoint (`config.json`, `model.safetensors`):
the real-size one `tools/make_mms_fixtures.py --real DIR` writes, which
`vivace bench --voice DIR/mms-real-size` loads too. Runs on CUDA when
available, else on the CPU (for a dry run). Needs torch and transformers
(installed on the lent GPU machines).
"""

import argparse
import datetime
import json
import statistics
import time

import torch
from transformers import VitsModel

parser = argparse.ArgumentParser()
parser.add_argument("--checkpoint", required=True, help="Hugging Face VITS checkpoint directory")
parser.add_argument("--tokens", type=int, default=120, help="input ids for full synthesis")
parser.add_argument("--frames", type=int, default=250, help="latent frames for the decoder (250 = 4 s at 16 kHz)")
parser.add_argument("--runs", type=int, default=20)
parser.add_argument("--warmup", type=int, default=3)
parser.add_argument("--compile", action="store_true", help="also time torch.compile")
parser.add_argument("--out", help="write the report here as JSON")
args = parser.parse_args()

device = "cuda" if torch.cuda.is_available() else "cpu"
report = {
    "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
    "device": device,
    "torch": torch.__version__,
    "checkpoint": args.checkpoint,
    "rows": [],
}
if device == "cuda":
    props = torch.cuda.get_device_properties(0)
    report["gpu"] = {"name": props.name, "cc": f"{props.major}.{props.minor}",
                     "memory_gib": round(props.total_memory / 2**30, 1)}


def sync():
    if device == "cuda":
        torch.cuda.synchronize()


def settings(seed: bool):
    """The seed module's settings on (TF32, cuDNN benchmark) or PyTorch's defaults."""
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = seed
        torch.backends.cudnn.allow_tf32 = seed
        torch.backends.cudnn.benchmark = seed


def timed(fn):
    for _ in range(args.warmup):
        fn()
    sync()
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return {"median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times),
            "max_ms": 1e3 * max(times), "runs": args.runs}


def record(workload, variant, batch, fn, audio_seconds):
    row = {"workload": workload, "variant": variant, "batch": batch}
    try:
        row.update(timed(fn))
        row["audio_s"] = audio_seconds
        row["rtf"] = row["median_ms"] / 1e3 / audio_seconds
    except Exception as e:  # a variant that fails is a result too
        row["error"] = f"{type(e).__name__}: {e}"[:500]
    report["rows"].append(row)
    print(json.dumps(row), flush=True)


model = VitsModel.from_pretrained(args.checkpoint).eval().to(device)
config = model.config
generator = torch.Generator().manual_seed(0)


def random_ids(n, vocab, seed=0):
    """The ids `vivace bench --model-only` draws (xorshift64*, `model_bench::random_ids`),
    so that both sides synthesize the same input."""
    mask = (1 << 64) - 1
    span = max(vocab - 1, 1)
    state = seed ^ 0x9E3779B97F4A7C15
    out = []
    for _ in range(n):
        state ^= state >> 12
        state ^= (state << 25) & mask
        state ^= state >> 27
        out.append(1 + ((state * 0x2545F4914F6CDD1D) & mask) % span)
    return out


ids = torch.tensor([random_ids(args.tokens, config.vocab_size)], dtype=torch.long).to(device)

# Full synthesis: the audio length comes from the model's own durations.
with torch.inference_mode():
    torch.manual_seed(1)
    full_audio = model(input_ids=ids).waveform.shape[-1] / config.sampling_rate
compiled_model = None
for variant in ["eager", "seed"] + (["compile"] if args.compile else []):
    settings(variant != "eager")
    target = model
    if variant == "compile":
        compiled_model = compiled_model or torch.compile(model)
        target = compiled_model

    def full(target=target, variant=variant):
        torch.manual_seed(1)
        if variant == "eager":
            with torch.no_grad():
                target(input_ids=ids)
        else:
            with torch.inference_mode():
                target(input_ids=ids)

    record(f"full-{args.tokens}-tokens", variant, 1, full, full_audio)

# The decoder alone: latents of `frames` frames, upsampled to audio.
hop = 1
for rate in config.upsample_rates:
    hop *= rate
decoder = model.decoder
compiled_decoder = None
for batch in (1, 8):
    latents = torch.randn(batch, config.flow_size, args.frames, generator=generator).to(device)
    audio_seconds = batch * args.frames * hop / config.sampling_rate
    for variant in ["eager", "seed"] + (["compile"] if args.compile else []):
        settings(variant != "eager")
        target = decoder
        if variant == "compile":
            compiled_decoder = compiled_decoder or torch.compile(decoder)
            target = compiled_decoder

        def decode(target=target, latents=latents, variant=variant):
            if variant == "eager":
                with torch.no_grad():
                    target(latents)
            else:
                with torch.inference_mode():
                    target(latents)

        record(f"decoder-{args.frames}-frames", variant, batch, decode, audio_seconds)

if args.out:
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
