#!/usr/bin/env python3
"""Time to first audio for a Kokoro voice, side by side: `vivace say
--voice kokoro:VOICE --output-raw TEXT` against kokoro-onnx 0.6.1's
`create_stream` (same model file, voice pack and text), each a fresh
process, timed from its start to the first byte of audio on its stdout
(model load, phonemization and the first batch included). Also the time to
the last byte. Rounds alternate between the two; medians are printed as
JSON on stdout.

    python3 -m venv /tmp/kokoro_venv
    /tmp/kokoro_venv/bin/pip install kokoro-onnx==0.6.1 phonemizer==3.4.0 \\
        espeakng-loader==0.2.4 onnxruntime==1.32.0
    python3 bench/kokoro_ttfa_peer.py --python /tmp/kokoro_venv/bin/python \\
        --vivace target/release/vivace --rounds 5 TEXT_FILE

A text longer than one batch (510 phonemes) shows the difference between
the first audio and the whole.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

# kokoro-onnx, streaming: one byte on stdout as soon as the first batch is
# spoken, then the rest.
PEER = r"""
import asyncio, os, sys, tempfile
import numpy as np
from kokoro_onnx import Kokoro
weights, voice, lang, text = sys.argv[1:5]
pack = np.fromfile(os.path.join(weights, "kokoro-js-1.2.1-voices", voice + ".bin"), dtype="<f4")
with tempfile.TemporaryDirectory() as tmp:
    voices = os.path.join(tmp, "voices.npz")
    np.savez(voices, **{voice: pack.reshape(-1, 1, 256)})
    kokoro = Kokoro(os.path.join(weights, "kokoro-v1.0-int8", "kokoro-v1.0.int8.onnx"), voices)
async def main():
    out = sys.stdout.buffer
    async for samples, _ in kokoro.create_stream(text, voice=voice, lang=lang):
        out.write(np.asarray(samples, dtype="<f4").tobytes())
        out.flush()
asyncio.run(main())
"""


def timed(cmd: list) -> tuple:
    """Seconds from process start to its first and its last stdout byte
    (stderr goes to a file, so that a chatty process cannot block on it)."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        first = proc.stdout.read(1)
        first_at = time.perf_counter() - start
        rest = proc.stdout.read()
        proc.wait()
        last_at = time.perf_counter() - start
        if proc.returncode != 0 or not first:
            err.seek(0)
            raise SystemExit(f"failed: {cmd[0]}\n{err.read().decode()}")
    return first_at, last_at, (len(first) + len(rest)) / 4 / 24_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("text_file")
    parser.add_argument("--python", required=True, help="the venv with kokoro-onnx")
    parser.add_argument("--vivace", default="target/release/vivace")
    parser.add_argument("--voice", default="af_heart")
    parser.add_argument("--lang", default="en-us")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--weights", default=os.path.expanduser("~/.cache/vivace/weights")
    )
    args = parser.parse_args()
    with open(args.text_file, encoding="utf-8") as f:
        text = f.read().strip()
    vivace = [
        args.vivace, "say", "--voice", f"kokoro:{args.voice}", "--output-raw",
        "--sample-format", "f32", "--no-normalize", text,
    ]
    peer = [args.python, "-c", PEER, args.weights, args.voice, args.lang, text]
    runs = {"vivace": [], "kokoro_onnx": []}
    for r in range(args.rounds):
        for name, cmd in (("vivace", vivace), ("kokoro_onnx", peer)):
            runs[name].append(timed(cmd))
        v, p = runs["vivace"][-1], runs["kokoro_onnx"][-1]
        print(
            f"round {r}: first audio {v[0]:.3f} s vs {p[0]:.3f} s, "
            f"all {v[1]:.3f} s vs {p[1]:.3f} s ({v[2]:.2f} s vs {p[2]:.2f} s of audio)",
            file=sys.stderr,
        )
    med = {
        name: {
            "first_audio_s": round(statistics.median(r[0] for r in rs), 3),
            "all_audio_s": round(statistics.median(r[1] for r in rs), 3),
            "audio_s": round(statistics.median(r[2] for r in rs), 3),
        }
        for name, rs in runs.items()
    }
    med["ratio_first_audio"] = round(
        med["vivace"]["first_audio_s"] / med["kokoro_onnx"]["first_audio_s"], 3
    )
    med["ratio_all_audio"] = round(
        med["vivace"]["all_audio_s"] / med["kokoro_onnx"]["all_audio_s"], 3
    )
    print(json.dumps(med, indent=1))


if __name__ == "__main__":
    main()
