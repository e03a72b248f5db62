#!/usr/bin/env python3
"""Goldens for the BS.1770 integrated loudness Chatterbox Turbo normalizes its
reference to (`pyloudnorm.Meter(rate).integrated_loudness`, K-weighting, 400 ms
blocks at 75 % overlap, gates at -70 LUFS and -10 LU), on signals the Rust
test rebuilds exactly: sums of sines with a slow envelope and a quiet gap.

    /tmp/cbenv/bin/python tools/make_loudness_goldens.py
"""
import json
from pathlib import Path

import numpy as np
import pyloudnorm

OUT = Path(__file__).resolve().parent.parent / "crates/vivace-frontend/tests/fixtures/loudness.json"


def signal(rate: int, seconds: float, freqs, amp: float) -> np.ndarray:
    """Must match `signal` in crates/vivace-frontend/src/loudness.rs's tests."""
    n = int(rate * seconds)
    t = np.arange(n, dtype=np.float64) / rate
    x = np.zeros(n)
    for k, f in enumerate(freqs):
        x += np.sin(2 * np.pi * f * t + k) / (k + 1)
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t)
    x = amp * x * env
    x[n // 3: n // 3 + rate] *= 0.001  # a quiet second the gates drop
    return x.astype(np.float32)


cases = []
for rate, seconds, freqs, amp in [(24000, 6.0, [220.0, 1200.0, 5000.0], 0.3),
                                  (16000, 5.5, [90.0, 700.0], 0.05),
                                  (44100, 2.0, [30.0, 3000.0, 12000.0], 0.8)]:
    x = signal(rate, seconds, freqs, amp)
    lufs = pyloudnorm.Meter(rate).integrated_loudness(x)
    gain = 10.0 ** ((-27.0 - lufs) / 20.0)
    y = x * gain
    cases.append(dict(rate=rate, seconds=seconds, freqs=freqs, amp=amp, lufs=float(lufs),
                      normalized_head=[float(v) for v in y[:8]], normalized_sum=float(np.abs(y).astype(np.float64).sum())))
OUT.write_text(json.dumps(cases, indent=1) + "\n")
print(cases)
