#!/usr/bin/env python3
"""End-to-end goldens for Kokoro: kokoro-onnx 0.6.1's `Kokoro.create` (its
text pipeline, onnxruntime on the int8 export, its silence trim and the
pauses between batches) speaking texts with the kokoro-js 1.2.1 voice packs
Vivace installs.

    python3 -m venv /tmp/kokoro_venv
    /tmp/kokoro_venv/bin/pip install kokoro-onnx==0.6.1 phonemizer==3.4.0 \
        espeakng-loader==0.2.4 onnxruntime==1.32.0
    vivace download kokoro     # the model, the voices, espeak-ng 1.52.0's data
    /tmp/kokoro_venv/bin/python tools/make_kokoro_e2e_goldens.py \
        ~/.cache/vivace/weights crates/vivace/tests/fixtures/kokoro

Writes `e2e.json` (per case: text, voice, language, speed, the batches'
phonemes and pauses, the sample count of each batch before and after the
trim, and of the whole) and
`e2e_hello.f32` (the whole waveform of the first case, little-endian f32,
for `vivace validate` and the tests).
"""

import json, os, sys, tempfile, importlib.metadata as md
import numpy as np
from kokoro_onnx import Kokoro, SAMPLE_RATE

weights, out = sys.argv[1], sys.argv[2]
model = os.path.join(weights, "kokoro-v1.0-int8", "kokoro-v1.0.int8.onnx")
packs = os.path.join(weights, "kokoro-js-1.2.1-voices")

CASES = [
    ("Hello world.", "af_heart", "en-us", 1.0),
    ("Kokoro speaks quickly, but clearly.", "bm_george", "en-gb", 1.3),
    ("Hola, ¿cómo estás? Muy bien, gracias.", "ef_dora", "es", 1.0),
    # One long batch (495 tokens), near the 510 limit.
    (" ".join(["The quick brown fox jumps over the lazy dog, and then it runs away."] * 6),
     "af_bella", "en-us", 1.0),
]

voices = {}
for _, name, _, _ in CASES:
    raw = np.fromfile(os.path.join(packs, name + ".bin"), dtype="<f4")
    voices[name] = raw.reshape(-1, 1, 256)
with tempfile.TemporaryDirectory() as tmp:
    voices_path = os.path.join(tmp, "voices.npz")
    np.savez(voices_path, **voices)
    kokoro = Kokoro(model, voices_path)
    cases = []
    for i, (text, name, lang, speed) in enumerate(CASES):
        voice, phonemes, batches = kokoro._prepare(text, name, speed, lang, False, 0.25, 0.1)
        lengths, raw = [], []
        for batch, pause in batches:
            audio, _ = kokoro._create_batch(batch, voice, speed, True, pause)
            lengths.append(int(audio.shape[0]))
            tokens = kokoro.tokenizer.tokenize(batch)
            untrimmed, _ = kokoro._infer(tokens, kokoro._style_for(voice, len(tokens)), speed)
            raw.append(int(untrimmed.shape[0]))
        audio, rate = kokoro.create(text, voice=name, speed=speed, lang=lang)
        assert rate == SAMPLE_RATE and sum(lengths) == audio.shape[0]
        cases.append({"text": text, "voice": name, "lang": lang, "speed": speed,
                      "batches": [b for b, _ in batches], "pauses": [p for _, p in batches],
                      "batch_samples": lengths, "untrimmed_samples": raw,
                      "samples": int(audio.shape[0])})
        if i == 0:
            audio.astype("<f4").tofile(os.path.join(out, "e2e_hello.f32"))

meta = {name: md.version(name) for name in
        ["kokoro-onnx", "phonemizer", "espeakng-loader", "onnxruntime", "numpy"]}
with open(os.path.join(out, "e2e.json"), "w") as f:
    json.dump({"meta": meta, "sample_rate": SAMPLE_RATE, "cases": cases}, f,
              ensure_ascii=False, indent=1)
    f.write("\n")
print(json.dumps(cases, ensure_ascii=False, indent=1)[:2000])
