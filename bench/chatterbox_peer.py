#!/usr/bin/env python3
"""The whole Chatterbox voice side by side: `vivace say` against the PyTorch
reference (chatterbox-tts 0.1.7), same checkpoint folder, same text, same
machine, in alternating rounds.

The folder holds real-size random weights (`t3_cfg.safetensors` from
`tools/make_t3_goldens.py --real-size`, `s3gen.safetensors` from
`tools/make_s3gen_goldens.py --real-size`, the real `tokenizer.json`, a
random `ve.safetensors`, and a `conds.pt` whose S3Gen prompt is 10 s long).
The voice is already conditioned (`conds.pt`). Both sides speak one
sentence of 250 speech tokens (10 s of audio): random weights never draw
the stop token, so PyTorch's loop runs with it disabled and Vivace with
`--max-tokens 250`.

PyTorch runs `T3.inference` (CFG 0.5, its default sampling), then
`S3Gen.inference` (10 flow steps and the vocoder); the model is loaded once
and warmed up. Vivace runs `vivace say -v` once per round, its report
giving the time to first audio and the total without the load; its peak
memory comes from `/usr/bin/time`. Prints medians and ratios; `--json OUT`
keeps them.

    cargo build --release
    /tmp/cbenv/bin/python bench/chatterbox_peer.py DIR [--rounds 2] [--json OUT] [--vivace-args "..."]

With `--turbo`, DIR is a Turbo folder (`t3_turbo_v1.safetensors` from
`tools/make_t3_goldens.py --turbo --real-size`, `s3gen_meanflow.safetensors`
from `tools/make_s3gen_goldens.py --real-size`, GPT-2's tokenizer files, a
`ve.safetensors`, a `conds.pt` with a 10 s S3Gen prompt) and PyTorch runs
`T3.inference_turbo` (its defaults) then `S3Gen.inference` with 2 meanflow
steps, the three silence tokens appended, as `ChatterboxTurboTTS.generate`.

Needs the venv of tools/make_t3_goldens.py (torch, chatterbox-tts).
"""

import argparse
import json
import platform
import re
import resource
import shlex
import statistics
import subprocess
import time
from pathlib import Path

import torch

from chatterbox.tts import ChatterboxTTS, punc_norm

ROOT = Path(__file__).resolve().parent.parent
TEXT = "The quick brown fox jumps over the lazy dog near the quiet riverbank today."
TOKENS = 250


def torch_round(tts):
    text = punc_norm(TEXT)
    ids = tts.tokenizer.text_to_tokens(text)
    ids = torch.cat([ids, ids])
    ids = torch.nn.functional.pad(ids, (1, 0), value=tts.t3.hp.start_text_token)
    ids = torch.nn.functional.pad(ids, (0, 1), value=tts.t3.hp.stop_text_token)
    t0 = time.perf_counter()
    with torch.inference_mode():
        speech = tts.t3.inference(t3_cond=tts.conds.t3, text_tokens=ids, max_new_tokens=TOKENS,
                                  temperature=0.8, cfg_weight=0.5, repetition_penalty=1.2,
                                  min_p=0.05, top_p=1.0)[0]
        t1 = time.perf_counter()
        speech = speech[speech < 6561]
        wav, _ = tts.s3gen.inference(speech_tokens=speech, ref_dict=tts.conds.gen)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, wav.shape[-1] / 24000


def torch_round_turbo(tts):
    from chatterbox.tts_turbo import punc_norm as turbo_punc_norm
    ids = tts.tokenizer(turbo_punc_norm(TEXT), return_tensors="pt").input_ids
    t0 = time.perf_counter()
    with torch.inference_mode():
        speech = tts.t3.inference_turbo(t3_cond=tts.conds.t3, text_tokens=ids,
                                        max_gen_len=TOKENS - 1)
        t1 = time.perf_counter()
        speech = speech[speech < 6561]
        speech = torch.cat([speech, torch.tensor([4299, 4299, 4299])])
        wav, _ = tts.s3gen.inference(speech_tokens=speech, ref_dict=tts.conds.gen,
                                     n_cfm_timesteps=2)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, wav.shape[-1] / 24000


def load_turbo(folder):
    """`ChatterboxTurboTTS.from_local`, the T3 loaded without GPT-2's unused
    `wte` (the random file has none)."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.tts_turbo import ChatterboxTurboTTS, Conditionals
    from t3_peer import turbo_model
    t3 = turbo_model(folder / "t3_turbo_v1.safetensors")
    t3.eval()
    s3gen = S3Gen(meanflow=True)
    s3gen.load_state_dict(load_file(str(folder / "s3gen_meanflow.safetensors")), strict=False)
    s3gen.eval()
    ve = VoiceEncoder()
    ve.load_state_dict(load_file(str(folder / "ve.safetensors")))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    conds = Conditionals.load(folder / "conds.pt")
    return ChatterboxTurboTTS(t3, s3gen, ve, tokenizer, "cpu", conds=conds)


def vivace_round(folder, extra):
    exe = ROOT / "target" / "release" / "vivace"
    cmd = ["/usr/bin/time", "-v", str(exe), "say", "--voice", str(folder), "--max-tokens",
           str(TOKENS), "--seed", "1", "-v", "-f", "/tmp/chatterbox-peer.wav", *extra, TEXT]
    err = subprocess.run(cmd, check=True, capture_output=True, text=True).stderr
    total = float(re.search(r"total ([0-9.]+) s", err).group(1))
    first = float(re.search(r"first audio after ([0-9.]+) s", err).group(1))
    audio = float(re.search(r"([0-9.]+) s of audio", err).group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1)) / 1024
    return total, first, audio, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--vivace-args", default="", help="extra flags for vivace say")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--turbo", action="store_true")
    args = ap.parse_args()

    tts = load_turbo(args.dir) if args.turbo else ChatterboxTTS.from_local(args.dir, "cpu")
    tts.t3.hp.stop_speech_token = -1  # never stop: the same token count every round
    extra = shlex.split(args.vivace_args)
    run = torch_round_turbo if args.turbo else torch_round
    rows = []
    for r in range(args.rounds):
        t3_s, s3gen_s, audio_s = run(tts)
        total, first, v_audio, rss = vivace_round(args.dir, extra)
        rows.append(dict(torch_t3_s=t3_s, torch_s3gen_s=s3gen_s, torch_total_s=t3_s + s3gen_s,
                         torch_audio_s=audio_s, vivace_total_s=total, vivace_first_audio_s=first,
                         vivace_audio_s=v_audio, vivace_peak_rss_mb=rss))
        print(f"round {r}: PyTorch T3 {t3_s:.1f} s + S3Gen {s3gen_s:.1f} s for {audio_s:.2f} s of audio; "
              f"Vivace {total:.1f} s (first audio {first:.1f} s) for {v_audio:.2f} s, peak {rss:.0f} MB",
              flush=True)
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    med["torch_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    med["ratio"] = med["vivace_total_s"] / med["torch_total_s"]
    med["vivace_rtf"] = med["vivace_total_s"] / med["vivace_audio_s"]
    med["torch_rtf"] = med["torch_total_s"] / med["torch_audio_s"]
    print(json.dumps(med, indent=1))
    if args.json:
        args.json.write_text(json.dumps(dict(
            date=time.strftime("%Y-%m-%d"), machine=platform.processor() or platform.machine(),
            threads=torch.get_num_threads(), text=TEXT, tokens=TOKENS, vivace_args=args.vivace_args,
            turbo=args.turbo,
            torch=torch.__version__, rounds=rows, median=med), indent=1) + "\n")


if __name__ == "__main__":
    main()
