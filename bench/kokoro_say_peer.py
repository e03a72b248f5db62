#!/usr/bin/env python3
"""kokoro-onnx 0.6.1 speaking a text to a WAV file, as a whole process: the
peer of `vivace say --voice kokoro:VOICE -f OUT.wav TEXT` (same model file,
same kokoro-js voice pack, same text pipeline, onnxruntime's defaults).

    python3 -m venv /tmp/kokoro_venv
    /tmp/kokoro_venv/bin/pip install kokoro-onnx==0.6.1 phonemizer==3.4.0 \
        espeakng-loader==0.2.4 onnxruntime==1.32.0
    /tmp/kokoro_venv/bin/python bench/kokoro_say_peer.py ~/.cache/vivace/weights \
        af_heart en-us OUT.wav "Text to speak."

Prints the seconds to the audio and the audio's length on stderr.
"""

import os, sys, tempfile, time, wave
import numpy as np
from kokoro_onnx import Kokoro

weights, voice, lang, out, text = sys.argv[1:6]
start = time.time()
pack = np.fromfile(os.path.join(weights, "kokoro-js-1.2.1-voices", voice + ".bin"), dtype="<f4")
with tempfile.TemporaryDirectory() as tmp:
    voices = os.path.join(tmp, "voices.npz")
    np.savez(voices, **{voice: pack.reshape(-1, 1, 256)})
    kokoro = Kokoro(os.path.join(weights, "kokoro-v1.0-int8", "kokoro-v1.0.int8.onnx"), voices)
audio, rate = kokoro.create(text, voice=voice, lang=lang)
with wave.open(out, "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
print(f"{time.time() - start:.3f} s for {len(audio) / rate:.3f} s of audio", file=sys.stderr)
