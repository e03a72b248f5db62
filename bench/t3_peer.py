#!/usr/bin/env python3
"""T3 side by side: Vivace against the PyTorch reference (chatterbox-tts
0.1.7), same weights, same conditioning, same text, same machine, in
alternating rounds.

The weights are real-size random ones from
`tools/make_t3_goldens.py --real-size --out DIR` (speed depends on shapes,
not values). Both sides decode a fixed number of speech tokens (250, that is
10 s of audio) with the reference's default sampling (CFG 0.5, repetition
penalty 1.2, temperature 0.8, min-p 0.05) after the same 60-token text. In
PyTorch the reference's own `T3.inference` runs (model loaded once, warmed
up; the stop token disabled so every round decodes the same count); the
prefill is timed to the first speech-head call. Vivace's `t3_bench` example
runs once per round (its own load excluded). Prints medians and ratios;
`--json OUT` keeps them.

    cargo build --release -p vivace-models --example t3_bench
    /tmp/cbenv/bin/python bench/t3_peer.py DIR [--rounds 2] [--tokens 250] [--json OUT]

With `--turbo`, DIR holds a real-size random `t3_turbo_v1.safetensors`
(`tools/make_t3_goldens.py --turbo --real-size --out DIR`) and both sides
run Turbo's decoding (`inference_turbo`: no guidance, temperature 0.8,
top-k 1000, top-p 0.95, repetition penalty 1.2) after 60 GPT-2 text tokens.

Needs the venv of tools/make_t3_goldens.py (torch, chatterbox-tts).
"""

import argparse
import json
import platform
import resource
import statistics
import subprocess
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from chatterbox.models.t3 import T3
from chatterbox.models.t3.modules.cond_enc import T3Cond
from chatterbox.models.t3.modules.t3_config import T3Config

ROOT = Path(__file__).resolve().parent.parent
TEXT = 60


def torch_round(model, cond, tokens):
    text = torch.tensor([[14 + (i * 7 % 26) for i in range(TEXT)]])
    text = torch.cat([text, text])
    text = torch.nn.functional.pad(text, (1, 0), value=model.hp.start_text_token)
    text = torch.nn.functional.pad(text, (0, 1), value=model.hp.stop_text_token)
    marks = []
    hook = model.speech_head.register_forward_hook(lambda *_: marks.append(time.perf_counter()))
    t0 = time.perf_counter()
    try:
        out = model.inference(t3_cond=T3Cond(**cond), text_tokens=text, max_new_tokens=tokens,
                              temperature=0.8, cfg_weight=0.5, repetition_penalty=1.2,
                              min_p=0.05, top_p=1.0)
    finally:
        hook.remove()
    t1 = time.perf_counter()
    n = out.shape[1]
    return marks[0] - t0, n / (t1 - marks[0])


def torch_round_turbo(model, cond, tokens):
    text = torch.tensor([[262 + (i * 37 % 2000) for i in range(TEXT)]])
    marks = []
    hook = model.speech_head.register_forward_hook(lambda *_: marks.append(time.perf_counter()))
    t0 = time.perf_counter()
    try:
        c = T3Cond(**cond)
        c.cond_prompt_speech_emb = None
        out = model.inference_turbo(c, text, temperature=0.8, top_k=1000, top_p=0.95,
                                    repetition_penalty=1.2, max_gen_len=tokens - 1)
    finally:
        hook.remove()
    t1 = time.perf_counter()
    n = out.shape[1]
    return marks[0] - t0, (n - 1) / (t1 - marks[0])


def turbo_model(path):
    hp = T3Config(text_tokens_dict_size=50276)
    hp.llama_config_name = "GPT2_medium"
    hp.speech_tokens_dict_size = 6563
    hp.input_pos_emb = None
    hp.speech_cond_prompt_len = 375
    hp.use_perceiver_resampler = False
    hp.emotion_adv = False
    model = T3(hp)
    model.load_state_dict(load_file(str(path)), strict=False)
    del model.tfmr.wte
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=250)
    ap.add_argument("--precision", default="f32", help="Vivace's: f32 or bf16 (PyTorch runs f32)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--turbo", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(torch.get_num_threads())
    if args.turbo:
        model = turbo_model(args.dir / "t3_turbo_v1.safetensors")
    else:
        model = T3(T3Config.english_only())
        model.load_state_dict(load_file(str(args.dir / "t3_cfg.safetensors")))
    model.eval()
    model.hp.stop_speech_token = -1  # never stop: the same token count every round
    cond = torch.load(args.dir / "conds.pt")["t3"]
    run = torch_round_turbo if args.turbo else torch_round
    run(model, dict(cond), 5)  # warm-up

    exe = ROOT / "target" / "release" / "examples" / "t3_bench"
    rows = []
    for r in range(args.rounds):
        prefill, rate = run(model, dict(cond), args.tokens)
        out = subprocess.run([str(exe), str(args.dir), "--tokens", str(args.tokens), "--text",
                              str(TEXT), "--precision", args.precision, "--json"],
                             check=True, capture_output=True, text=True).stdout
        v = json.loads(out.strip().splitlines()[-1])
        rows.append(dict(torch_prefill_s=prefill, torch_tokens_per_s=rate,
                         vivace_prefill_s=v["prefill_s"], vivace_tokens_per_s=v["tokens_per_s"],
                         vivace_tokens=v["tokens"], vivace_peak_rss_mb=v["peak_rss_mb"]))
        print(f"round {r}: PyTorch prefill {prefill:.2f} s, {rate:.2f} tokens/s; "
              f"Vivace prefill {v['prefill_s']:.2f} s, {v['tokens_per_s']:.2f} tokens/s "
              f"({v['tokens']} tokens, peak {v['peak_rss_mb']:.0f} MB)", flush=True)
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    med["torch_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    med["decode_speedup"] = med["vivace_tokens_per_s"] / med["torch_tokens_per_s"]
    med["prefill_ratio"] = med["vivace_prefill_s"] / med["torch_prefill_s"]
    print(json.dumps(med, indent=1))
    if args.json:
        args.json.write_text(json.dumps(dict(
            date=time.strftime("%Y-%m-%d"), machine=platform.processor() or platform.machine(),
            cores=torch.get_num_threads(), tokens=args.tokens, text_tokens=TEXT,
            precision=args.precision, turbo=args.turbo, torch=torch.__version__, rounds=rows,
            median=med), indent=1) + "\n")


if __name__ == "__main__":
    main()
