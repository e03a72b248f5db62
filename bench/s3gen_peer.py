#!/usr/bin/env python3
"""S3Gen side by side: Vivace against the PyTorch reference (chatterbox-tts
0.1.7), same weights, same inputs, same machine, in alternating rounds.

The weights and inputs are real-size random ones from
`tools/make_s3gen_goldens.py --real-size --out DIR` (speed depends on shapes,
not values): a 10 s reference prompt (250 tokens) and 250 speech tokens
(10 s of audio). Each round times the flow (token encoder and every decoder
step) and the HiFT vocoder in PyTorch (model loaded once, warmed up), then
runs Vivace's `s3gen_bench` example once (its own load excluded). Prints
medians and the Vivace/PyTorch ratio; `--json OUT` keeps them.

    cargo build --release -p vivace-models --example s3gen_bench
    /tmp/cbenv/bin/python bench/s3gen_peer.py DIR [--rounds 3] [--meanflow] [--json OUT]

Needs the venv of tools/make_s3gen_goldens.py (torch, chatterbox-tts).
"""

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from make_s3gen_goldens import REAL, Model  # noqa: E402


def torch_run(model, g, steps, meanflow):
    with torch.inference_mode():
        t0 = time.perf_counter()
        mel, _ = model.flow.inference(
            token=g["speech_tokens"][None],
            token_len=torch.tensor([g["speech_tokens"].numel()]),
            prompt_token=g["prompt_token"][None],
            prompt_token_len=torch.tensor([g["prompt_token"].numel()]),
            prompt_feat=g["prompt_feat"][None],
            prompt_feat_len=None,
            embedding=g["embedding"][None],
            finalize=True,
            n_timesteps=steps,
            noised_mels=g["noise"][None, :, 2 * g["prompt_token"].numel():] if meanflow else None,
            meanflow=meanflow,
        )
        t1 = time.perf_counter()
        model.mel2wav.inference(speech_feat=mel, cache_source=torch.zeros(1, 1, 0))
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--meanflow", action="store_true", help="Turbo's 2-step decoder")
    ap.add_argument("--vivace", type=Path, default=ROOT / "target/release/examples/s3gen_bench")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    name = "s3gen_meanflow" if args.meanflow else "s3gen"
    steps = 2 if args.meanflow else 10
    model = Model(REAL, args.meanflow).eval()
    model.load_state_dict(load_file(str(args.dir / f"{name}.safetensors")))
    g = load_file(str(args.dir / f"{name}_goldens.safetensors"))
    torch_run(model, g, 1, args.meanflow)  # warm-up

    rows = {"torch_flow": [], "torch_vocoder": [], "vivace_flow": [], "vivace_vocoder": []}
    cmd = [str(args.vivace), str(args.dir), "--runs", "1", "--json"] + (["--meanflow"] if args.meanflow else [])
    for r in range(args.rounds):
        flow, voc = torch_run(model, g, steps, args.meanflow)
        rows["torch_flow"].append(flow)
        rows["torch_vocoder"].append(voc)
        out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        rows["vivace_flow"].append(out["flow_s"])
        rows["vivace_vocoder"].append(out["vocoder_s"])
        print(f"round {r + 1}: torch flow {flow:.2f} s vocoder {voc:.2f} s | "
              f"vivace flow {out['flow_s']:.2f} s vocoder {out['vocoder_s']:.2f} s "
              f"(waveform vs reference: {out['relative_l2_vs_reference']})", flush=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    torch_total = med["torch_flow"] + med["torch_vocoder"]
    vivace_total = med["vivace_flow"] + med["vivace_vocoder"]
    summary = {
        "model": name,
        "steps": steps,
        "audio_s": 10.0,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "medians_s": med,
        "ratio_flow": med["vivace_flow"] / med["torch_flow"],
        "ratio_vocoder": med["vivace_vocoder"] / med["torch_vocoder"],
        "ratio_total": vivace_total / torch_total,
        "rounds": rows,
    }
    print(f"medians of {args.rounds}: torch {torch_total:.2f} s, vivace {vivace_total:.2f} s; "
          f"vivace/torch: flow {summary['ratio_flow']:.3f}, vocoder {summary['ratio_vocoder']:.3f}, "
          f"total {summary['ratio_total']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
