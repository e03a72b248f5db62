#!/usr/bin/env python3
"""PyTorch eager T3 on a device: the peer of `vivace bench --t3` in the GPU
check (scripts/gpu-check.sh).

Runs chatterbox-tts 0.1.7's own `T3.inference` (the English T3 at its
published size, PyTorch's random initialization: speed depends on shapes,
not values) on a synthetic prompt like Vivace's: a zero speaker embedding,
150 prompt speech tokens, emotion 0.5, a 60-id text; the reference's
default sampling (CFG 0.5, repetition penalty 1.2, temperature 0.8, min-p
0.05), the stop token disabled so every round decodes the same count. The
prefill is timed to the first speech-head call, the decode from there.
Batch 1 only: the reference decodes one sequence at a time.

The GPU machine has torch and transformers but not chatterbox-tts, and the
package's `__init__` imports its whole TTS stack (whose dependencies are
not there either): only T3's modules are taken from the wheel
(`pip download --no-deps chatterbox-tts==0.1.7`, 109 KB), under empty
package `__init__`s.

    python3 bench/t3_torch_device.py --wheel chatterbox_tts-0.1.7-py3-none-any.whl \
        [--device cuda] [--tokens 250] [--rounds 2] [--out t3-torch.json]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

TEXT = 60
PROMPT_TOKENS = 150


def import_t3(wheel: Path):
    """T3's modules from the wheel, importable without the package's own imports."""
    root = Path(tempfile.mkdtemp(prefix="chatterbox-t3-"))
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if name.startswith("chatterbox/models/t3/") or name == "chatterbox/models/utils.py":
                z.extract(name, root)
    for package in ("chatterbox", "chatterbox/models"):
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text("")
    sys.path.insert(0, str(root))


def timed_round(torch, model, cond, device, tokens):
    """(prefill seconds, decode tokens per second) of one `T3.inference`."""
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    text = torch.tensor([[14 + (i * 7 % 26) for i in range(TEXT)]])
    text = torch.cat([text, text])
    text = torch.nn.functional.pad(text, (1, 0), value=model.hp.start_text_token)
    text = torch.nn.functional.pad(text, (0, 1), value=model.hp.stop_text_token)
    marks = []

    def first_head_call(*_):
        if not marks:
            sync()
            marks.append(time.perf_counter())

    hook = model.speech_head.register_forward_hook(first_head_call)
    sync()
    t0 = time.perf_counter()
    try:
        with torch.inference_mode():
            out = model.inference(t3_cond=cond, text_tokens=text.to(device), max_new_tokens=tokens,
                                  temperature=0.8, cfg_weight=0.5, repetition_penalty=1.2,
                                  min_p=0.05, top_p=1.0)
        sync()
    finally:
        hook.remove()
    t1 = time.perf_counter()
    return marks[0] - t0, out.shape[1] / (t1 - marks[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheel", type=Path, required=True, help="chatterbox_tts-0.1.7-py3-none-any.whl")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tokens", type=int, default=250)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import_t3(args.wheel)
    import torch
    import transformers
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.cond_enc import T3Cond
    from chatterbox.models.t3.modules.t3_config import T3Config

    start = time.perf_counter()
    with torch.device(args.device):
        model = T3(T3Config.english_only())
    model = model.to(args.device).eval()
    model.hp.stop_speech_token = -1  # never stop: the same token count every round
    build_s = time.perf_counter() - start
    cond = T3Cond(
        speaker_emb=torch.zeros(1, 256),
        cond_prompt_speech_tokens=torch.tensor([[i * 37 % 6561 for i in range(PROMPT_TOKENS)]]),
        emotion_adv=0.5 * torch.ones(1, 1, 1),
    ).to(device=args.device)

    timed_round(torch, model, cond, args.device, 5)  # warm-up: kernels loaded, caches made
    rounds = []
    for r in range(args.rounds):
        prefill, rate = timed_round(torch, model, cond, args.device, args.tokens)
        rounds.append(dict(prefill_s=prefill, tokens_per_s=rate))
        print(f"round {r}: PyTorch eager T3 prefill {prefill:.3f} s, {rate:.1f} tokens/s", flush=True)
    report = dict(
        date=time.strftime("%Y-%m-%d"),
        device=args.device,
        gpu=torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        torch=torch.__version__,
        transformers=transformers.__version__,
        weights_dtype=str(next(model.parameters()).dtype),
        # PyTorch's default: f32 matmuls without TF32 (Vivace's plan on an
        # H100 is TF32): compare the rows knowing it.
        matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
        model="chatterbox-tts 0.1.7 T3.inference, English, published sizes, random init",
        batch=1,
        tokens=args.tokens,
        text_tokens=TEXT,
        build_s=build_s,
        rounds=rounds,
        prefill_s=statistics.median(r["prefill_s"] for r in rounds),
        tokens_per_s=statistics.median(r["tokens_per_s"] for r in rounds),
    )
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
