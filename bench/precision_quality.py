#!/usr/bin/env python3
"""Quality cost of a reduced precision: Vivace's audio in PRECISION against
its own f32 audio, same voice, same text, noise scales 0 and no loudness
normalization (so only the arithmetic differs).

Prints, per precision:
  - relative L2 error of the waveform and the signal-to-error ratio (dB);
  - a log-mel distance, the audible-band figure: 80 mel bands from 0 to
    half the sample rate (1024-point STFT, hop 256, Hann window), power in
    dB, compared band by band over the frames within 60 dB of the loudest;
    mean, 95th percentile and maximum of |difference| in dB.

Needs numpy (the virtual environment `bench/peer.py` makes has it):

    /tmp/vivace-peer-venv/bin/python bench/precision_quality.py \\
        [--precision int8 --precision bf16] [--text-file F] [--json OUT]
"""

import argparse
import json
import os
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from peer import LONG_TEXT  # noqa: E402  (the same text as the speed comparison)


def read_wav(path: Path):
    with wave.open(str(path)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        return pcm.astype(np.float64) / 32768.0, w.getframerate()


def log_mel(x, rate, n_fft=1024, hop=256, bands=80):
    window = np.hanning(n_fft + 1)[:-1]
    frames = 1 + (len(x) - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    power = np.abs(np.fft.rfft(x[index] * window, axis=1)) ** 2
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    hz = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    edges = hz(np.linspace(mel(0), mel(rate / 2), bands + 2))
    freqs = np.fft.rfftfreq(n_fft, 1 / rate)
    bank = np.zeros((bands, len(freqs)))
    for i in range(bands):
        lo, mid, hi = edges[i : i + 3]
        bank[i] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None)
    return 10 * np.log10(power @ bank.T + 1e-10)


def compare(reference, other, rate):
    n = min(len(reference), len(other))
    a, b = reference[:n], other[:n]
    error = np.sum((a - b) ** 2)
    ref_mel, other_mel = log_mel(a, rate), log_mel(b, rate)
    loud = ref_mel.max(axis=1) > ref_mel.max() - 60
    diff = np.abs(ref_mel - other_mel)[loud]
    return {
        "samples": [len(reference), len(other)],
        "relative_l2": round(float(np.sqrt(error / np.sum(a**2))), 5),
        "snr_db": round(float(10 * np.log10(np.sum(a**2) / max(error, 1e-30))), 2),
        "log_mel_db": {
            "mean": round(float(diff.mean()), 3),
            "p95": round(float(np.percentile(diff, 95)), 3),
            "max": round(float(diff.max()), 2),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--precision", action="append", help="default: int8")
    parser.add_argument("--vivace", default=str(ROOT / "target" / "release" / "vivace"))
    parser.add_argument("--voice", help="default: Vivace's default voice")
    parser.add_argument("--text-file", help="default: bench/peer.py's long text")
    parser.add_argument("--json")
    args = parser.parse_args()
    text = Path(args.text_file).read_text() if args.text_file else LONG_TEXT
    out = Path("/tmp/vivace-quality")
    out.mkdir(exist_ok=True)

    def render(precision: str) -> Path:
        wav = out / f"{precision}.wav"
        # No per-sentence peak normalization: a precision's different peaks
        # would show as gain errors.
        command = [args.vivace, "say", "--noise-scale", "0", "--noise-w-scale", "0", "--no-normalize"]
        command += ["-f", str(wav)]
        if args.voice:
            command += ["--voice", args.voice]
        env = dict(os.environ, VIVACE_PRECISION=precision)
        start = time.perf_counter()
        subprocess.run(command, input=text, text=True, env=env, check=True)
        print(f"{precision}: {time.perf_counter() - start:.2f} s", file=sys.stderr)
        return wav

    reference, rate = read_wav(render("f32"))
    report = {"date": time.strftime("%Y-%m-%d"), "text_chars": len(text), "against": "f32"}
    for precision in args.precision or ["int8"]:
        other, _ = read_wav(render(precision))
        report[precision] = compare(reference, other, rate)
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
